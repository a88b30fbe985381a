package provider

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// resyncPauseFixture is a server with objects 1..n of size bytes each (1
// KiB chunks) in one bag, its re-check turns of slice bytes, its auditors'
// budgets of rate and burst bytes, the node's unlimited, on a fake clock;
// and the largest block of those objects.
func resyncPauseFixture(t *testing.T, n, size int, slice, auditorRate, auditorBurst int64) (*Server, *prometheus.Registry, *fakeClock, int) {
	t.Helper()
	net := testnet.NewMock(t, 1, 0)
	bs, put := heldFixture(t)
	var objs []blockstore.Manifest
	for i := range n {
		objs = append(objs, put(string(chain.ChannelBag(1)), uint64(i+1), noise(size), nil))
	}
	s, reg := resyncServer(t, net.Host(0), bs, slog.New(slog.DiscardHandler))
	clk := &fakeClock{at: time.Now()}
	b := s.audits.resyncBudget
	b.node = rate.NewLimiter(rate.Inf, 0)
	b.slice, b.auditorRate, b.auditorBurst = slice, auditorRate, auditorBurst
	b.now, b.sleep = clk.now, clk.sleep
	largest := 0
	for _, m := range objs {
		for _, c := range m.Blocks() {
			blk, err := bs.Get(c)
			if err != nil {
				t.Fatal(err)
			}
			largest = max(largest, len(blk))
		}
	}
	return s, reg, clk, largest
}

// resyncServer is a provider on h over bs, its audits and scrubs off, for
// tests of re-checks after a FAIL; it logs to log, and its metrics are on
// the registry returned.
func resyncServer(t *testing.T, h *p2p.Host, bs *blockstore.Store, log *slog.Logger) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(h, bs, newFakeChain(), Identity{Worker: 1, Bucket: 1, Transactor: key},
		WithAudits(0, 0), WithScrub(0, 0), WithLogger(log), WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func resyncFail(auditor string, object uint64) *pb.AuditResult {
	return &pb.AuditResult{Auditor: []byte(auditor), Bag: string(chain.ChannelBag(1)), Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
}

// runResyncLoop runs s's re-check loop until the test ends.
func runResyncLoop(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.resyncLoop(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func counterOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	v, err := metricsutil.Counter(reg, "satchel_provider_audit_"+name+"_total")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An auditor's budget is checked before every turn of a re-check, not
// before its first alone: one auditor failing 8 objects, with a budget
// that pays for about 3 of them and never refills, gets about its budget
// read (at most one turn over it), at most 3 objects re-checked, and the
// others skipped or paused part-way, waiting for its budget (here all 8
// start, round robin spreading the budget over them, and are paused
// part-way, none re-checked whole); another auditor's FAIL heard meanwhile
// is re-checked at once. Before the
// session-16 mend the budget was checked before an object's first turn
// only, and round robin started all 8 before any was done: all 8 were
// re-checked whole, the budget 88 KB in debt (in production 8 objects of
// up to 90 GiB each on one auditor's budget of 256 MiB).
func TestAuditResyncAuditorBudgetCheckedEachTurn(t *testing.T) {
	const objects, size, slice, burst = 8, 16 << 10, 4 << 10, 48 << 10
	s, reg, _, largest := resyncPauseFixture(t, objects+1, size, slice, 0, burst)
	for i := range objects {
		s.queueResync(resyncFail("operator-a", uint64(i+1)))
	}
	runResyncLoop(t, s)
	a := s.audits
	// settled: every FAIL of operator-a re-checked, skipped, or waiting
	// started and paused, and extra more re-checked.
	settled := func(extra float64) func() bool {
		return func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, req := range a.queue.waiting {
				if !req.started || a.resyncBudget.allow(req.auditor) {
					return false
				}
			}
			return counterOf(t, reg, "resyncs")+counterOf(t, reg, "resyncs_skipped")+float64(len(a.queue.waiting)) == objects+extra
		}
	}
	waitUntil(t, "every re-check done, skipped or paused", settled(0))
	rechecked := counterOf(t, reg, "resyncs")
	a.mu.Lock()
	paused := len(a.queue.waiting)
	a.mu.Unlock()
	b := a.resyncBudget
	b.mu.Lock()
	charged := burst - b.auditor("operator-a").Tokens(b.now())
	b.mu.Unlock()
	t.Logf("%v re-checked, %v skipped, %d paused; %v bytes charged to a budget of %d", rechecked, counterOf(t, reg, "resyncs_skipped"), paused, charged, burst)
	if rechecked > 3 {
		t.Fatalf("%v objects of %d bytes re-checked on one auditor's budget of %d bytes; want at most 3", rechecked, size, burst)
	}
	if charged > float64(burst+slice+largest) {
		t.Fatalf("%v bytes read on one auditor's budget of %d; want at most one turn (%d bytes and a block of %d) over it", charged, burst, slice, largest)
	}

	// Another auditor's FAIL is re-checked while operator-a's are paused,
	// which stay so.
	skipped := counterOf(t, reg, "resyncs_skipped")
	s.queueResync(resyncFail("operator-b", objects+1))
	waitUntil(t, "operator-b's FAIL re-checked", settled(1))
	if got := counterOf(t, reg, "resyncs"); got != rechecked+1 || counterOf(t, reg, "resyncs_skipped") != skipped {
		t.Fatalf("%v re-checked after operator-b's FAIL; want operator-b's alone more than %v", got, rechecked)
	}
}

// When every queued re-check is paused on its auditor's spent budget, the
// loop waits until the budget holds a byte again, on the budgets' clock,
// and goes on: the objects are re-checked to their ends, the budget never
// more than a turn in debt, with a wait before at most one turn each, as
// long in all as the budget takes to pay for what was read past its burst.
// A loop that spun on the paused objects would never see the fake clock
// move, and never finish.
func TestAuditResyncPausedWaitsForRefill(t *testing.T) {
	const objects, size, slice, perSecond, burst = 2, 16 << 10, 4 << 10, 1 << 10, 8 << 10
	s, reg, clk, largest := resyncPauseFixture(t, objects, size, slice, perSecond, burst)
	b := s.audits.resyncBudget
	waits, worst := 0, 0.0
	clk.onWait = func(at time.Time) {
		waits++
		b.mu.Lock()
		worst = min(worst, b.auditor("operator-a").Tokens(at))
		b.mu.Unlock()
	}
	for i := range objects {
		s.queueResync(resyncFail("operator-a", uint64(i+1)))
	}
	runResyncLoop(t, s)
	waitUntil(t, "both objects re-checked", func() bool { return counterOf(t, reg, "resyncs") == objects })
	if n := counterOf(t, reg, "resyncs_skipped"); n != 0 {
		t.Fatalf("%v re-checks skipped; both started before the budget was spent", n)
	}
	clk.mu.Lock()
	defer clk.mu.Unlock()
	turn := slice + largest
	maxTurns := objects * (size/slice + 2)
	if waits == 0 || waits > maxTurns {
		t.Fatalf("the loop waited %d times for the budget; want at least once, and at most once a turn (%d)", waits, maxTurns)
	}
	if worst < -float64(turn) {
		t.Fatalf("the auditor's budget went %v bytes into debt; want at most a turn (%d)", -worst, turn)
	}
	// What was read past the burst, less the last turn's overdraft, was
	// paid for by waiting.
	if want := time.Duration(float64(objects*size-burst-turn) / perSecond * float64(time.Second)); clk.waited < want {
		t.Fatalf("waited %v for the auditor's budget; %d bytes read on a %d-byte burst at %d B/s take at least %v", clk.waited, objects*size, burst, perSecond, want)
	}
}
