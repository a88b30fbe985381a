package provider

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/store"
)

// gatedChain is a fakeChain whose object reads are counted and each wait
// for a value on gate (none wait once it is closed).
type gatedChain struct {
	*fakeChain
	gate    chan struct{}
	entered chan chain.ObjectID
	reads   atomic.Int64
}

func (g *gatedChain) DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	g.reads.Add(1)
	g.entered <- id
	select {
	case <-g.gate:
	case <-ctx.Done():
		return chain.DataObject{}, ctx.Err()
	}
	return g.fakeChain.DataObject(ctx, bag, id)
}

type testPeerKey struct{}

func gatedAuth(t *testing.T) (*gatedChain, *chainAuth, chain.DataObject) {
	t.Helper()
	f, _, obj := authFixture(t)
	g := &gatedChain{fakeChain: f, gate: make(chan struct{}), entered: make(chan chain.ObjectID, 1000)}
	a := newChainAuth(g, 2)
	a.limit.peerOf = func(ctx context.Context) peer.ID {
		p, _ := ctx.Value(testPeerKey{}).(peer.ID)
		return p
	}
	return g, a, obj
}

// Concurrent chunk requests naming the same unregistered object make one
// chain read: they join the read in flight, and later ones are answered
// from the cached miss until the chain registers the object.
func TestAuthorizerMergesMisses(t *testing.T) {
	ctx := context.Background()
	g, a, obj := gatedAuth(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := a.AuthorizeChunk(ctx, string(obj.Bag), 77)
			errs <- err
		})
	}
	<-g.entered // the first read is at the chain; the others queue behind it
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "register the object on chain") {
			t.Fatalf("AuthorizeChunk(missing) = %v; want a refusal naming registration", err)
		}
	}
	if got := g.reads.Load(); got != 1 {
		t.Fatalf("%d concurrent requests for one missing object made %d chain reads; want 1", n, got)
	}
	if _, err := a.AuthorizeChunk(ctx, string(obj.Bag), 77); !errors.Is(err, ErrNotAuthorized) || g.reads.Load() != 1 {
		t.Fatalf("a repeated miss = %v after %d reads; want it answered from the cache", err, g.reads.Load())
	}
	if nf, hits := counterValue(a.reads.WithLabelValues("not_found")), counterValue(a.missHits); nf != 1 || hits < 1 {
		t.Fatalf("metrics: %v not_found reads, %v cached misses; want 1 and at least 1", nf, hits)
	}

	// Registered on chain: the follower drops the miss, the next request
	// reads the chain again and is let in.
	g.mu.Lock()
	g.objects[chain.ObjectRef{Bag: obj.Bag, ID: 77}] = chain.DataObject{ID: 77, Bag: obj.Bag, Size: 3, ContentID: obj.ContentID}
	g.mu.Unlock()
	a.registered(obj.Bag, []chain.ObjectID{77})
	if root, err := a.AuthorizeChunk(ctx, string(obj.Bag), 77); err != nil || root.String() != obj.ContentID {
		t.Fatalf("AuthorizeChunk(registered) = %s, %v; want %s", root, err, obj.ContentID)
	}
	if got := g.reads.Load(); got != 2 {
		t.Fatalf("chain reads = %d; want 2", got)
	}
}

// A flood of lookups of distinct missing objects holds at most the per-peer
// bound of chain reads for one peer and the overall bound for all peers; a
// lookup that cannot get a slot within its context is refused as busy.
func TestAuthorizerBoundsReads(t *testing.T) {
	g, a, obj := gatedAuth(t)
	a.limit = newAuthLimiter(2, 3)
	a.limit.peerOf = func(ctx context.Context) peer.ID {
		p, _ := ctx.Value(testPeerKey{}).(peer.ID)
		return p
	}
	const flood = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*flood)
	lookUp := func(p peer.ID, id int) {
		ctx := context.WithValue(context.Background(), testPeerKey{}, p)
		wg.Go(func() {
			_, err := a.object(ctx, obj.Bag, chain.ObjectID(id))
			errs <- err
		})
	}
	for i := range flood {
		lookUp("A", 1000+i)
	}
	waitUntil(t, "peer A's lookups to queue", func() bool { return a.limit.waiting("A") == flood && len(g.entered) == 2 })
	if got := g.reads.Load(); got != 2 {
		t.Fatalf("peer A's %d distinct lookups made %d reads at once; want the per-peer bound 2", flood, got)
	}
	// Another peer still gets a slot, up to the overall bound.
	for i := range flood {
		lookUp("B", 2000+i)
	}
	waitUntil(t, "peer B's lookups to queue", func() bool { return a.limit.waiting("B") == flood && len(g.entered) == 3 })
	if got := g.reads.Load(); got != 3 {
		t.Fatalf("two peers' floods made %d reads at once; want the overall bound 3", got)
	}
	// A third peer waits, and gives up busy when its context ends.
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), testPeerKey{}, peer.ID("C")), 50*time.Millisecond)
	defer cancel()
	if _, err := a.object(ctx, obj.Bag, 3000); !errors.Is(err, store.ErrProviderBusy) || !strings.Contains(err.Error(), "provider busy") {
		t.Fatalf("a lookup over the overall bound = %v; want a busy refusal", err)
	}
	// One more of peer A's gives up on its own share: not busy, the
	// uploader is to keep fewer look-ups in flight.
	actx, acancel := context.WithTimeout(context.WithValue(context.Background(), testPeerKey{}, peer.ID("A")), 50*time.Millisecond)
	defer acancel()
	if _, err := a.object(actx, obj.Bag, 3001); err == nil || errors.Is(err, store.ErrProviderBusy) || !strings.Contains(err.Error(), "fewer objects") {
		t.Fatalf("a lookup over the peer's bound = %v; want a refusal naming its own share", err)
	}
	if got := g.reads.Load(); got != 3 {
		t.Fatalf("reads = %d after a refused lookup; want 3", got)
	}
	if busy := counterValue(a.reads.WithLabelValues("busy")); busy != 2 {
		t.Fatalf("busy reads counted %v; want 2", busy)
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, chain.ErrNotFound) {
			t.Fatalf("a flooded lookup = %v; want not found", err)
		}
	}
	if got := g.reads.Load(); got != 2*flood {
		t.Fatalf("reads = %d; want one per distinct object (%d)", got, 2*flood)
	}
	if a.limit.waiting("A")+a.limit.waiting("B")+a.limit.waiting("C") != 0 || a.limit.sem.Held() != 0 || a.limit.sem.Keys() != 0 {
		t.Fatal("the limiter still holds slots after every lookup ended")
	}
}
