package client

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// byteCountingConn counts the chunk bytes the client sends over a store
// stream: a push's data counts once its data frames went out (not when the
// provider answered "already stored").
type byteCountingConn struct {
	storeConn
	sent *atomic.Int64
}

func (c byteCountingConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	c.count(&ch)
	return c.storeConn.Push(ctx, ch)
}

func (c byteCountingConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	c.count(&ch)
	return c.storeConn.PushPipeline(ctx, ch)
}

func (c byteCountingConn) count(ch *store.ChunkPush) {
	step, n := ch.OnStep, int64(len(ch.Data))
	ch.OnStep = func(s store.PushStep) {
		if s == store.PushDataSent {
			c.sent.Add(n)
		}
		if step != nil {
			step(s)
		}
	}
}

// countSent makes c count the chunk bytes it pushes, and the providers it
// opens store streams to, in order.
func countSent(c *Client) (sent *atomic.Int64, opened func() []peer.ID) {
	sent = new(atomic.Int64)
	var mu sync.Mutex
	var ids []peer.ID
	open := c.openConn
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		mu.Lock()
		ids = append(ids, p)
		mu.Unlock()
		conn, err := open(ctx, p)
		if err != nil {
			return nil, err
		}
		return byteCountingConn{storeConn: conn, sent: sent}, nil
	}
	return sent, func() []peer.ID {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

func TestReplicationModeChoice(t *testing.T) {
	for _, tc := range []struct {
		r    Replication
		size int64
		want int
		pipe bool
	}{
		{ReplicateAuto, PipelineMinSize, 3, true},
		{ReplicateAuto, PipelineMinSize - 1, 3, false},
		{ReplicateAuto, 1 << 30, 1, false},
		{ReplicatePipelined, 10, 2, true},
		{ReplicatePipelined, 1 << 30, 1, false},
		{ReplicateDirect, 1 << 30, 3, false},
	} {
		if got := tc.r.pipelines(tc.size, tc.want); got != tc.pipe {
			t.Errorf("%v.pipelines(%d, %d) = %v, want %v", tc.r, tc.size, tc.want, got, tc.pipe)
		}
	}
}

// resendLedger tells the chunk bytes an upload had cause to send again:
// those of a pipeline hop that relayed a failure (the uploader pushes the
// chunk to it directly) and of a push that failed after its data went out
// (it is tried again).
type resendLedger struct {
	mu      sync.Mutex
	bytes   int64
	relayed int // receipts relayed by pipeline hops
	causes  []string
}

func (l *resendLedger) resend(n int64, cause string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += n
	l.causes = append(l.causes, cause)
}

func (l *resendLedger) snapshot() (bytes int64, relayed int, causes []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes, l.relayed, slices.Clone(l.causes)
}

// resendConn records in a ledger why the pushes over a store stream sent
// a chunk's bytes more than once.
type resendConn struct {
	storeConn
	l *resendLedger
}

func (c resendConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	sent := dataSent(&ch)
	r, err := c.storeConn.Push(ctx, ch)
	if err != nil && sent.Load() {
		c.l.resend(int64(len(ch.Data)), fmt.Sprintf("chunk %d: direct push failed after its data: %v", ch.Index, err))
	}
	return r, err
}

func (c resendConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	sent := dataSent(&ch)
	res, err := c.storeConn.PushPipeline(ctx, ch)
	if err != nil && sent.Load() {
		c.l.resend(int64(len(ch.Data)), fmt.Sprintf("chunk %d: pipelined push failed after its data: %v", ch.Index, err))
	}
	for _, f := range res.Failed {
		c.l.resend(int64(len(ch.Data)), fmt.Sprintf("chunk %d: hop %s failed: %v", ch.Index, f.Peer, f.Err))
	}
	if len(res.Receipts) > 1 {
		c.l.mu.Lock()
		c.l.relayed += len(res.Receipts) - 1
		c.l.mu.Unlock()
	}
	return res, err
}

// dataSent makes ch report whether its data frames went out.
func dataSent(ch *store.ChunkPush) *atomic.Bool {
	sent := new(atomic.Bool)
	step := ch.OnStep
	ch.OnStep = func(s store.PushStep) {
		if s == store.PushDataSent {
			sent.Store(true)
		}
		if step != nil {
			step(s)
		}
	}
	return sent
}

// recordResends makes c record, in the ledger it returns, the bytes its
// pushes had cause to send again.
func recordResends(c *Client) *resendLedger {
	l := new(resendLedger)
	open := c.openConn
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		conn, err := open(ctx, p)
		if err != nil {
			return nil, err
		}
		return resendConn{storeConn: conn, l: l}, nil
	}
	return l
}

// TestNetworkPipelinedPut stores an object on 3 real providers with the
// chunks sent once: each provider passes them on, and the put returns with
// every provider's receipt and bind. The client's bytes sent equal the
// object's, plus only what a relayed hop failure or a failed push gave it
// cause to send again (a loaded hop can miss the forward deadline): none
// when no failure came back.
func TestNetworkPipelinedPut(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir())
	resends := recordResends(c)
	sent, _ := countSent(c)
	ctx := testCtx(t)
	data := randomBytes(t, 6<<20+777, 31)
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(3), WithReplication(ReplicatePipelined))
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Providers) != 3 {
		t.Fatalf("object on %d providers, want 3", len(obj.Providers))
	}
	for _, p := range net.Providers() {
		if !p.Holds(obj.ID) {
			t.Fatalf("provider %d does not hold object %d", p.Index, obj.ID)
		}
	}
	again, relayed, causes := resends.snapshot()
	for _, c := range causes {
		t.Logf("sent again: %s", c)
	}
	if relayed == 0 {
		t.Fatal("no pipeline hop relayed a receipt: the chunks were not passed along")
	}
	if got, want := sent.Load(), int64(len(data)); got < want || got > want+again {
		t.Fatalf("client sent %d chunk bytes for a %d-byte object (%.2f×), %d of them with cause to send again; a pipeline sends each once",
			got, want, float64(got)/float64(want), again)
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
}

// TestNetworkPipelineMiddleKilled kills a provider in the middle of the
// pipelines mid-put: the providers before it route around it, the client
// completes the put on the bag's fourth provider (a live holder forwards it
// the chunks), and every chunk ends with 3 receipts from live providers;
// the object reads back byte for byte.
func TestNetworkPipelineMiddleKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(4))
	c := netClient(t, net, t.TempDir(), WithReconnectWait(time.Second)) // the killed provider stays down
	sent, opened := countSent(c)
	ctx := testCtx(t)
	data := randomBytes(t, 48*itChunk, 32)
	var k killer
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(3), WithReplication(ReplicatePipelined),
		WithChunkSize(itChunk), WithProgress(func(p Progress) {
			if p.Links[LinkSigned] < 12 {
				return
			}
			k.kill(t, func() *testnet.Provider {
				// The second target: the middle of the pipelines headed
				// by the first.
				second := opened()[1]
				for _, pr := range net.Providers() {
					if pr.AddrInfo().ID == second {
						return pr
					}
				}
				t.Errorf("the second target %s is no provider of the testnet", second)
				return nil
			})
		}))
	k.wait()
	victim := k.victim
	if err != nil {
		t.Fatal(err)
	}
	if victim == nil || victim.Running() {
		t.Fatal("no provider was killed during the upload")
	}
	if len(obj.Providers) != 3 || slices.Contains(obj.Providers, victim.AddrInfo().ID) {
		t.Fatalf("object on %v, want 3 live providers", obj.Providers)
	}
	for _, p := range net.Providers() {
		if p != victim && !p.Holds(obj.ID) {
			t.Fatalf("live provider %d does not hold object %d", p.Index, obj.ID)
		}
	}
	distinct := map[peer.ID]bool{}
	for _, p := range opened() {
		distinct[p] = true
	}
	if len(distinct) != 4 {
		t.Fatalf("store streams opened to %d providers; the replacement was never used", len(distinct))
	}
	// The replacement got the chunks from providers holding them (they
	// forward a chunk read back from their store), so the client sent about
	// the object once: more only for the chunks in flight to the victim.
	ratio := float64(sent.Load()) / float64(len(data))
	t.Logf("client sent %.2f× the object's bytes", ratio)
	if ratio > 1.5 {
		t.Fatalf("client sent %.2f× the object's bytes; the replacement should get them from the holders", ratio)
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
}

// TestFeedPipelinesSplitsLongPipelines: a chunk for more providers than one
// forward list may name goes out as several pipelines sharing its buffer,
// which returns to the pool when the last is done.
func TestFeedPipelinesSplitsLongPipelines(t *testing.T) {
	n := store.MaxForwardHops + 3
	pool := newBufPool(1, 16)
	p := &pusher{tr: newTracker(OpPut, nil, 0), pool: pool, pipeline: true}
	var to []*target
	for range n {
		to = append(to, &target{queue: make(chan *chunkJob, 1)})
	}
	buf, err := pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.feed(&chunkJob{index: 1, data: buf, pool: pool}, to)
	var jobs []*chunkJob
	covered := 0
	for i, tg := range to {
		select {
		case j := <-tg.queue:
			if i != 1 && i != 1+store.MaxForwardHops+1 {
				t.Fatalf("target %d heads a pipeline", i)
			}
			if len(j.forward) > store.MaxForwardHops {
				t.Fatalf("forward list of %d", len(j.forward))
			}
			covered += 1 + len(j.forward)
			jobs = append(jobs, j)
		default:
		}
	}
	if len(jobs) != 2 || covered != n {
		t.Fatalf("%d pipelines covering %d targets, want 2 covering %d", len(jobs), covered, n)
	}
	jobs[0].done()
	select {
	case <-pool.free:
		t.Fatal("buffer back in the pool while a pipeline still uses it")
	default:
	}
	jobs[1].done()
	select {
	case <-pool.free:
	default:
		t.Fatal("buffer not back in the pool after both pipelines")
	}
}
