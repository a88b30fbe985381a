package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/internal/logbuf"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// fakeClock is a clock a re-check budget waits on without sleeping: a wait
// moves it on. onWait sees the clock before each wait.
type fakeClock struct {
	mu     sync.Mutex
	at     time.Time
	waited time.Duration
	onWait func(at time.Time)
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onWait != nil {
		c.onWait(c.at)
	}
	c.at = c.at.Add(d)
	c.waited += d
	return ctx.Err() == nil
}

// A failing object larger than the node's re-check burst is re-read at the
// node's rate, block by block, and leaves the budget at most one block in
// debt at any time; the FAIL of another object heard meanwhile waits its
// turn and is re-checked too. Before session 15 the whole object was read
// at once and charged after, so a large one left the node's budget in debt
// for as long as it took to pay back (hours after tens of GB), and every
// FAIL heard in that time was skipped — here, the second one.
func TestAuditResyncPacedByNodeBudget(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	bs, put := heldFixture(t)
	bag := chain.ChannelBag(1)
	big := put(string(bag), 7, bytes.Repeat([]byte("a block of a large object "), 1200), nil) // ~30 KiB
	small := put(string(bag), 8, []byte("a small object"), nil)
	s, reg := resyncServer(t, net.Host(0), bs, slog.New(slog.DiscardHandler))
	const perSecond, burst = 4 << 10, 4 << 10
	clk := &fakeClock{at: time.Now()}
	b := s.audits.resyncBudget
	b.node = rate.NewLimiter(perSecond, burst)
	b.now, b.sleep = clk.now, clk.sleep
	var total, largest int
	for _, obj := range []uint64{big.Object, small.Object} {
		m, _, _ := bs.Manifest(obj)
		for _, c := range m.Blocks() {
			blk, err := bs.Get(c)
			if err != nil {
				t.Fatal(err)
			}
			total += len(blk)
			largest = max(largest, len(blk))
		}
	}
	var worstDebt float64
	clk.onWait = func(at time.Time) { worstDebt = min(worstDebt, b.node.TokensAt(at)) }

	fail := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: string(bag), Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
	}
	s.queueResync(fail("operator-a", big.Object))
	s.queueResync(fail("operator-b", small.Object))
	runResyncLoop(t, s)
	counter := func(name string) float64 { return counterOf(t, reg, name) }
	waitUntil(t, "both FAILs handled", func() bool {
		return counter("resyncs")+counter("resyncs_skipped")+counter("resyncs_dropped") >= 2
	})
	if n := counter("resyncs_skipped") + counter("resyncs_dropped"); n != 0 {
		t.Fatalf("%v FAILs skipped or dropped; both should wait their turn", n)
	}
	clk.mu.Lock()
	waited := clk.waited
	clk.mu.Unlock()
	if want := time.Duration(float64(total-burst) / perSecond * float64(time.Second)); waited < want-time.Millisecond {
		t.Fatalf("re-checks of %d bytes waited %v for the node's budget; at %d B/s past a %d-byte burst they take %v", total, waited, perSecond, burst, want)
	}
	if worstDebt < -float64(largest) {
		t.Fatalf("the node's budget went %v bytes into debt; at most one block (%d bytes) is read before it is paid for", -worstDebt, largest)
	}
}

// The re-check queue is bounded: a FAIL heard while it is full drops the
// newest request whose re-check has not started (counted), whose cooldown
// ends, so its auditor's next round's FAIL of the object is acted on. An
// object part-way through its re-check keeps its place and its progress,
// the one whose turn is next too, and one in its turn counts against the
// bound; when every waiting object has started, the new FAIL is refused
// (counted, no cooldown). Before the session-16 mend the head of the round
// robin was dropped, often a large object part-way through.
func TestAuditResyncQueueFullKeepsStarted(t *testing.T) {
	s := &Server{audits: newAuditor(defaultAuditConfig()), am: newAuditMetrics()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.am.resyncsDropped)
	const bag = "dynamic:channel:1"
	fail := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: bag, Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
	}
	q := &s.audits.queue
	queued := func(object uint64) bool { return q.objects[resyncObj{bag: bag, object: object}] }
	cooling := func(object uint64) bool {
		_, ok := s.audits.resync.Get(resyncKey{bag: bag, object: object})
		return ok
	}
	dropped := func(want float64) {
		t.Helper()
		if v, err := metricsutil.Counter(reg, "satchel_provider_audit_resyncs_dropped_total"); err != nil || v != want {
			t.Fatalf("%v drops counted (%v), want %v", v, err, want)
		}
	}
	auditors := maxQueuedResyncs / maxResyncsPerAuditor
	for i := range maxQueuedResyncs {
		s.queueResync(fail(string(rune('a'+i%auditors)), uint64(i)))
	}
	if n := len(q.waiting); n != maxQueuedResyncs {
		t.Fatalf("%d queued, want a full queue of %d", n, maxQueuedResyncs)
	}
	// Object 0 is 1,000 blocks into its re-check, its next turn due.
	first, _, _ := s.audits.nextResync()
	first.started, first.next = true, 1000
	s.audits.requeueResync(first)
	q.waiting = append(q.waiting[len(q.waiting)-1:], q.waiting[:len(q.waiting)-1]...)

	s.queueResync(fail("late", 1000))
	dropped(1)
	newest := uint64(maxQueuedResyncs - 1)
	if len(q.waiting) != maxQueuedResyncs || q.waiting[0].object != 0 || q.waiting[0].next != 1000 || !queued(1000) {
		t.Fatalf("queue of %d from object %d (at block %d); want %d from object 0 at block 1000, and 1000 queued",
			len(q.waiting), q.waiting[0].object, q.waiting[0].next, maxQueuedResyncs)
	}
	if queued(newest) || cooling(newest) || q.byAuditor[string(rune('a'+newest%uint64(auditors)))] != maxResyncsPerAuditor-1 {
		t.Fatalf("object %d, the newest not started, not dropped whole: queued %v, cooling %v, counts %v", newest, queued(newest), cooling(newest), q.byAuditor)
	}

	// The object in its turn counts against the bound: a FAIL heard
	// meanwhile drops the newest not started, and the object put back
	// leaves the queue at its bound.
	inTurn, _, _ := s.audits.nextResync()
	s.queueResync(fail("late", 1001))
	s.audits.requeueResync(inTurn)
	dropped(2)
	if len(q.waiting) != maxQueuedResyncs || len(q.objects) != maxQueuedResyncs || !queued(1001) || queued(1000) || !queued(inTurn.object) {
		t.Fatalf("queue of %d (%d objects counted); want %d, 1000 dropped for 1001 and %d kept", len(q.waiting), len(q.objects), maxQueuedResyncs, inTurn.object)
	}

	// Every waiting one started: the new FAIL is refused, its cooldown not
	// started, and nothing queued is dropped.
	for i := range q.waiting {
		q.waiting[i].started = true
	}
	before := slices.Clone(q.waiting)
	s.queueResync(fail("late", 1002))
	dropped(3)
	if queued(1002) || cooling(1002) || !slices.EqualFunc(q.waiting, before, func(x, y resyncRequest) bool { return x.object == y.object }) {
		t.Fatalf("a FAIL heard with every waiting re-check started: queued %v, cooling %v; want it refused and the queue kept", queued(1002), cooling(1002))
	}
}

// Re-checks take turns: one very large failing object queued first is
// re-checked a slice at a time, and the small objects queued behind it are
// re-checked whole in their first turns, before it is done; it is still
// re-checked to its last block, where a corrupt one is found and handed to
// the repair. The chunk its failed audit sampled is re-checked first, so
// the corrupt chunk there is found in the object's first turn. Before
// session 16 an object was re-checked whole before the next, in order:
// about an hour for 30 GB at the node's rate, while the other FAILs queued
// and the oldest were dropped.
func TestAuditResyncTakesTurns(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	bs, put := heldFixture(t)
	bag := chain.ChannelBag(1)
	huge := put(string(bag), 7, noise(64<<10), nil) // 64 chunks of 1 KiB
	sampled, last := huge.Chunks[40].CID, huge.Chunks[len(huge.Chunks)-1].CID
	for _, c := range []cid.Cid{sampled, last} {
		blocktest.Overwrite(t, bs, c, func(b []byte) { b[0] ^= 1 })
	}
	smalls := []uint64{8, 9, 10}
	for i, id := range smalls {
		put(string(bag), id, noise(1000+i), nil)
	}
	logs := &logbuf.Buffer{}
	s, reg := resyncServer(t, net.Host(0), bs, slog.New(slog.NewJSONHandler(logs, nil)))
	clk := &fakeClock{at: time.Now()}
	b := s.audits.resyncBudget
	b.node = rate.NewLimiter(4<<10, 4<<10)
	b.now, b.sleep = clk.now, clk.sleep
	b.slice = 4 << 10 // a sixteenth of the huge object a turn

	fail := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: string(bag), Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
	}
	hugeFail := fail("operator-a", huge.Object)
	// The audit sampled chunk 40, and named chunks the object lacks.
	hugeFail.Samples = []*pb.Sample{{Index: 3}, {Index: 40}, {Index: 40, Offset: 100, Length: 10}, {Index: 1 << 40}}
	s.queueResync(hugeFail)
	for i, id := range smalls {
		s.queueResync(fail("operator-"+string(rune('b'+i)), id))
	}
	runResyncLoop(t, s)
	counter := func(name string) float64 { return counterOf(t, reg, name) }
	waitUntil(t, "every object re-checked", func() bool { return counter("resyncs") >= float64(1+len(smalls)) })
	if n := counter("resyncs_skipped") + counter("resyncs_dropped"); n != 0 {
		t.Fatalf("%v FAILs skipped or dropped; all should have their turns", n)
	}

	// The log, in the loop's order: each step with the object it was of.
	var steps []string
	unreadable := map[uint64]int{}
	for _, rec := range logRecords(t, logs) {
		switch rec.Msg {
		case "an audit found this node failing; re-checking the object":
			steps = append(steps, fmt.Sprintf("start %d", rec.Object))
		case "re-checked the chunks the audit sampled":
			steps = append(steps, fmt.Sprintf("sampled %d: %d chunks, %d unreadable", rec.Object, rec.Chunks, rec.Unreadable))
		case "re-checked the object":
			steps = append(steps, fmt.Sprintf("done %d", rec.Object))
			unreadable[rec.Object] = rec.Unreadable
		}
	}
	want := []string{"start 7", "sampled 7: 2 chunks, 1 unreadable"}
	for _, id := range smalls {
		want = append(want, fmt.Sprintf("start %d", id), fmt.Sprintf("done %d", id))
	}
	want = append(want, "done 7")
	if !slices.Equal(steps, want) {
		t.Fatalf("re-checks went\n  %v\nwant\n  %v\n(the huge object's first turn, its sampled chunks first; the small objects whole; the huge one's other turns)", steps, want)
	}
	if unreadable[huge.Object] != 2 || unreadable[8]+unreadable[9]+unreadable[10] != 0 {
		t.Fatalf("unreadable blocks found per object: %v; want the huge object's two corrupt chunks only", unreadable)
	}
	for _, c := range []cid.Cid{sampled, last} {
		if _, err := bs.Get(c); err == nil {
			t.Fatalf("corrupt chunk %s still served after the re-check", c)
		}
	}
	s.repairs.mu.Lock()
	repairs := slices.Collect(maps.Keys(s.repairs.pending))
	s.repairs.mu.Unlock()
	if len(repairs) != 2 || !slices.Contains(repairs, sampled) || !slices.Contains(repairs, last) {
		t.Fatalf("handed to the repair: %v; want the two corrupt chunks %s and %s", repairs, sampled, last)
	}
}

// logRecord is what the re-check tests read of a JSON log line.
type logRecord struct {
	Msg        string `json:"msg"`
	Object     uint64 `json:"object"`
	Chunks     int    `json:"chunks"`
	Unreadable int    `json:"unreadable"`
}

// logRecords decodes the JSON log lines in l.
func logRecords(t *testing.T, l *logbuf.Buffer) []logRecord {
	t.Helper()
	var out []logRecord
	dec := json.NewDecoder(bytes.NewReader(l.Bytes()))
	for dec.More() {
		var r logRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// noise is n random bytes: chunks that no other chunk repeats.
func noise(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return b
}
