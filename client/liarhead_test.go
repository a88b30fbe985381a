package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// liarConn is a stream to a provider that heads pipelines dishonestly: it
// stores the chunk itself, forwards it to no hop and reports every hop's
// disk full.
type liarConn struct{ fakeConn }

// fakeNoSpace is a relayed hop failure saying the hop's disk is full.
type fakeNoSpace struct{}

func (fakeNoSpace) Error() string   { return "no space left on device" }
func (fakeNoSpace) Is(t error) bool { return t == store.ErrNoSpace }

// PushPipeline stores the chunk and says every hop's disk is full.
func (c liarConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	return c.headOnly(ctx, ch, fakeNoSpace{})
}

// A pipeline head's relayed failures are only its word: one that reports
// every hop's disk full must not get them given up (and the spares after
// them) and fail the put while honest providers with room exist. Each hop
// it names gets the chunk directly and signs.
func TestPipelineHeadCannotEvictHonestHops(t *testing.T) {
	net := newFakeNet(t, 5)
	liar := net.providers[0]
	c := net.client(t.TempDir())
	orig := c.openConn
	c.openConn = func(ctx context.Context, id peer.ID) (storeConn, error) {
		sc, err := orig(ctx, id)
		if err == nil && id == liar.id() {
			return liarConn{sc.(fakeConn)}, nil
		}
		return sc, err
	}
	obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader(randomBytes(t, 2<<20, 7)), WithRedundancy(3), WithReplication(ReplicatePipelined))
	var np *NoProviderError
	if errors.As(err, &np) {
		t.Fatalf("one lying pipeline head failed the put with 4 honest providers: %v", err)
	}
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if len(obj.Providers) != 3 {
		t.Fatalf("object stored on %d providers %v; want 3", len(obj.Providers), obj.Providers)
	}
	liarHeaded := false
	for _, p := range obj.Providers {
		liarHeaded = liarHeaded || p == liar.id()
	}
	if !liarHeaded {
		t.Fatal("the liar is not a target of the put: the test needs it heading pipelines")
	}
}

// forwardConn is a stream to a provider that pipelines honestly: it stores
// the chunk, then pushes it to each hop of the forward list in turn and
// relays their receipts, or their failures.
type forwardConn struct {
	fakeConn
	net *fakeNet
}

// PushPipeline stores the chunk and passes it along the forward list.
func (c forwardConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	fwd := ch.Forward
	ch.Forward = nil
	r, err := c.Push(ctx, ch)
	if err != nil {
		return store.PipelineResult{}, err
	}
	res := store.PipelineResult{Receipts: []store.HopReceipt{{Peer: c.p.id(), Receipt: r}}}
	for _, h := range fwd {
		hp := fakeFetch{c.net}.provider(h.Peer)
		if hp == nil {
			res.Failed = append(res.Failed, store.HopError{Peer: h.Peer, Err: errors.New("could not reach hop")})
			continue
		}
		hop := ch
		hop.Session, hop.OnStep = h.Session, nil
		hr, err := fakeConn{hp}.Push(ctx, hop)
		if err != nil {
			res.Failed = append(res.Failed, store.HopError{Peer: h.Peer, Err: err})
			continue
		}
		res.Receipts = append(res.Receipts, store.HopReceipt{Peer: h.Peer, Receipt: hr})
	}
	return res, nil
}

// pushCounts counts, per provider, the pushes the client made itself:
// direct ones (Push) and pipelines it headed (PushPipeline). A hop's push
// by a forwarding head is not counted.
type pushCounts struct {
	mu     sync.Mutex
	direct map[peer.ID]int
	piped  map[peer.ID]int
}

func (n *pushCounts) add(m map[peer.ID]int, id peer.ID) {
	n.mu.Lock()
	m[id]++
	n.mu.Unlock()
}

func (n *pushCounts) get(m map[peer.ID]int, id peer.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return m[id]
}

// countingStoreConn counts the pushes made over a store stream.
type countingStoreConn struct {
	storeConn
	id peer.ID
	n  *pushCounts
}

func (c countingStoreConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	c.n.add(c.n.direct, c.id)
	return c.storeConn.Push(ctx, ch)
}

func (c countingStoreConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	c.n.add(c.n.piped, c.id)
	return c.storeConn.PushPipeline(ctx, ch)
}

// A pipeline head whose reports of failed hops the hops contradict (each
// signs the uploader's direct push at once) heads no more pipelines past
// headLieLimit of them: the direct pushes its lies cost are bounded by
// the limit and the pushes in flight when it is reached, not by the
// object's size. The other providers forward honestly, so a direct push
// to one is the cost of a lie. It stays a target, getting the chunks as a
// hop, and the put completes on all three.
func TestPipelineLyingHeadDropped(t *testing.T) {
	for _, tc := range []struct {
		name           string
		window, chunks int
	}{
		{"window 1", 1, 48},        // one chunk at a time: the counts are exact
		{"default window", 0, 256}, // 24 in flight: bounded
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := newFakeNet(t, 3)
			liar := net.providers[0]
			var opts []Option
			if tc.window > 0 {
				opts = append(opts, WithWindow(tc.window))
			}
			c := net.client(t.TempDir(), opts...)
			workers := min(c.opts.window, store.MaxChunksInFlight) // a target's pushes in flight
			n := &pushCounts{direct: map[peer.ID]int{}, piped: map[peer.ID]int{}}
			orig := c.openConn
			c.openConn = func(ctx context.Context, id peer.ID) (storeConn, error) {
				sc, err := orig(ctx, id)
				if err != nil {
					return nil, err
				}
				if id == liar.id() {
					sc = liarConn{sc.(fakeConn)}
				} else {
					sc = forwardConn{sc.(fakeConn), net}
				}
				return countingStoreConn{sc, id, n}, nil
			}
			data := randomBytes(t, tc.chunks*64<<10, 8)
			obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader(data), WithRedundancy(3), WithReplication(ReplicatePipelined))
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if len(obj.Providers) != 3 || !slices.Contains(obj.Providers, liar.id()) {
				t.Fatalf("object stored on %v; want all three providers, the liar %s among them", obj.Providers, liar.id())
			}
			lied := n.get(n.piped, liar.id())
			honestDirect := 0
			for _, p := range net.providers[1:] {
				honestDirect += n.get(n.direct, p.id())
			}
			t.Logf("%d chunks: the liar headed %d pipelines; %d direct pushes to the honest providers", tc.chunks, lied, honestDirect)
			if lied < headLieLimit {
				t.Fatalf("the liar headed %d pipelines; the test needs it to head %d or more", lied, headLieLimit)
			}
			// Every pipeline it headed cost a direct push to each of its 2
			// hops; honest heads cost none.
			if honestDirect != 2*lied {
				t.Errorf("%d direct pushes to the honest providers; want 2 per pipeline the liar headed (%d)", honestDirect, 2*lied)
			}
			if most := headLieLimit + workers - 1; lied > most {
				t.Errorf("the liar headed %d pipelines of %d chunks; want at most %d (the limit and the pushes in flight when it was reached)",
					lied, tc.chunks, most)
			}
		})
	}
}

// feedPipelines heads a chunk's pipeline with a target that may head: one
// past headLieLimit is only a hop, and when none may head each target is
// fed the chunk directly, the buffer shared by all.
func TestFeedPipelinesSkipsDroppedHeads(t *testing.T) {
	pool := newBufPool(1, 16)
	p := &pusher{tr: newTracker(OpPut, nil, 0), pool: pool, pipeline: true}
	to := make([]*target, 3)
	for i := range to {
		to[i] = &target{queue: make(chan *chunkJob, 1)}
	}
	to[0].headLies = headLieLimit
	buf, err := pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.feed(&chunkJob{index: 0, data: buf, pool: pool}, to) // index 0 rotates to[0] to the head
	if len(to[0].queue) != 0 {
		t.Fatal("the target past headLieLimit heads the pipeline")
	}
	if len(to[1].queue) != 1 || len(to[2].queue) != 0 {
		t.Fatalf("queues %d, %d; want the next target heading, the other a hop", len(to[1].queue), len(to[2].queue))
	}
	if j := <-to[1].queue; len(j.forward) != 2 {
		t.Fatalf("the pipeline forwards to %d targets, want 2", len(j.forward))
	} else {
		j.done()
	}
	for _, tg := range to {
		tg.headLies = headLieLimit
	}
	buf, err = pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.feed(&chunkJob{index: 1, data: buf, pool: pool}, to)
	for i, tg := range to {
		select {
		case j := <-tg.queue:
			if len(j.forward) != 0 {
				t.Fatalf("target %d forwards with no target allowed to head", i)
			}
			j.done()
		default:
			t.Fatalf("target %d was not fed the chunk directly", i)
		}
	}
	select {
	case <-pool.free:
	default:
		t.Fatal("buffer not back in the pool after the three direct pushes")
	}
}
