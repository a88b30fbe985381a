package provider

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

// heldBags is a chainAPI whose Bag reads, once armed, read the chain and
// then wait for release before answering: a look-up that read a bag's
// buckets and is still on its way (the DHT takes up to dhtLookupTimeout)
// when the bag moves.
type heldBags struct {
	*fakeChain
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (h *heldBags) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	b, err := h.fakeChain.Bag(ctx, id)
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if armed {
		close(h.entered)
		select {
		case <-h.release:
		case <-ctx.Done():
			return chain.Bag{}, ctx.Err()
		}
	}
	return b, err
}

// activeBucket returns a bucket run by a fresh peer ID, as its operator
// published it.
func activeBucket(t *testing.T, id chain.StorageBucketID) (chain.StorageBucket, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	w := chain.WorkerID(id)
	return chain.StorageBucket{ID: id, OperatorStatus: chain.OperatorActive, Operator: &w,
		Metadata: &chain.StorageOperatorMetadata{PeerID: pid.String(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/9"}}}, pid
}

// A look-up that read a bag's buckets before the bag moved, and finished
// after the move invalidated the cache, does not put the old providers
// back: the next chainPeers names the bag's new ones.
func TestPeerCacheNotRefilledByStaleLookup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })

	fc := newFakeChain()
	const self, old, moved = chain.StorageBucketID(1), chain.StorageBucketID(2), chain.StorageBucketID(3)
	oldBkt, oldPeer := activeBucket(t, old)
	newBkt, newPeer := activeBucket(t, moved)
	fc.buckets[old], fc.buckets[moved] = oldBkt, newBkt
	bag := chain.BagID("dynamic:channel:1")
	fc.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{self, old}}

	hc := &heldBags{fakeChain: fc, armed: true, entered: make(chan struct{}), release: make(chan struct{})}
	f := newPeerFinder(h, hc, self)
	stale := make(chan []chainPeer, 1)
	go func() {
		ps, _ := f.chainPeers(ctx, bag)
		stale <- ps
	}()
	select {
	case <-hc.entered:
	case <-ctx.Done():
		t.Fatal("the look-up never read the bag")
	}
	// The bag moves while the look-up is on its way; the follower sees the
	// event and invalidates.
	fc.mu.Lock()
	fc.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{moved}}
	fc.mu.Unlock()
	f.invalidate(bag)
	close(hc.release)
	var got []chainPeer
	select {
	case got = <-stale:
	case <-ctx.Done():
		t.Fatal("the look-up did not end")
	}
	if len(got) != 1 || got[0].ID != oldPeer {
		t.Fatalf("the stale look-up found %v, want the old provider %s (the test's premise)", got, oldPeer)
	}

	ps, err := f.chainPeers(ctx, bag)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != newPeer || ps[0].Bucket != moved {
		t.Fatalf("after the move chainPeers = %+v, want the new bucket %d's provider %s (the old one is %s)", ps, moved, newPeer, oldPeer)
	}
}
