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

// A provider whose reports of failed hops the hops contradict (each
// signs the uploader's direct push at once) heads no more pipelines past
// headLieLimit of them, and goes last in the others': the direct pushes
// its lies cost are bounded by the limit and the pushes in flight when it
// is reached, not by the object's size. The other providers forward
// honestly along the chain (relayNet), so a direct push to one is the
// cost of a lie, as head or as middle hop. The liar stays a target,
// getting the chunks as the last hop, and the put completes on all three.
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
			r := &relayNet{net: net, liars: map[peer.ID]bool{liar.id(): true}}
			var opts []Option
			if tc.window > 0 {
				opts = append(opts, WithWindow(tc.window))
			}
			c := net.client(t.TempDir(), opts...)
			workers := min(c.opts.window, store.MaxChunksInFlight) // a target's pushes in flight
			n := r.count(c)
			data := randomBytes(t, tc.chunks*64<<10, 8)
			obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader(data), WithRedundancy(3), WithReplication(ReplicatePipelined))
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if len(obj.Providers) != 3 || !slices.Contains(obj.Providers, liar.id()) {
				t.Fatalf("object stored on %v; want all three providers, the liar %s among them", obj.Providers, liar.id())
			}
			lied := n.get(n.piped, liar.id())
			honestPiped := n.sum(n.piped, net.providers[1:])
			honestDirect := n.sum(n.direct, net.providers[1:])
			t.Logf("%d chunks: the liar headed %d pipelines, the honest providers %d; %d direct pushes to the honest providers",
				tc.chunks, lied, honestPiped, honestDirect)
			// Each pipeline the liar was contradicted in cost a direct
			// push to each hop after it (2 as head, 1 as middle hop).
			if honestDirect < headLieLimit {
				t.Fatalf("%d direct pushes to the honest providers; the test needs the liar contradicted %d times or more", honestDirect, headLieLimit)
			}
			most := headLieLimit + workers - 1 // the limit and the pushes in flight when it was reached
			if lied > most || honestDirect > 2*most {
				t.Errorf("the liar headed %d pipelines of %d chunks and cost %d direct pushes; want at most %d and %d",
					lied, tc.chunks, honestDirect, most, 2*most)
			}
			if lied+honestPiped != tc.chunks {
				t.Errorf("%d of %d chunks pipelined; want all: an honest head was dropped", lied+honestPiped, tc.chunks)
			}
		})
	}
}

// feedPipelines heads a chunk's pipeline with a target that may head: one
// past headLieLimit is only the last hop (it forwards to no one), and when
// none may head each target is fed the chunk directly, the buffer shared
// by all.
func TestFeedPipelinesSkipsDroppedHeads(t *testing.T) {
	pool := newBufPool(1, 16)
	p := &pusher{tr: newTracker(OpPut, nil, 0), pool: pool, pipeline: true}
	to := make([]*target, 3)
	for i := range to {
		to[i] = &target{queue: make(chan *chunkJob, 1)}
	}
	to[0].fwdLies = headLieLimit
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
	if j := <-to[1].queue; len(j.forward) != 2 || j.forward[0] != to[2] || j.forward[1] != to[0] {
		t.Fatalf("the pipeline forwards to %d targets (the dropped head last: %v), want 2, it last", len(j.forward), len(j.forward) == 2 && j.forward[1] == to[0])
	} else {
		j.done()
	}
	for _, tg := range to {
		tg.fwdLies = headLieLimit
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
