package provider

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

// Finding the other providers of a bag: the operators of its other buckets
// on chain, their published addresses, and the DHT.

// peerFinder finds the other providers of a bag: the operators of the
// bag's other storage buckets as the chain names them, and the peers that
// announce the bag key on the DHT. The addresses it learns go into the
// host's peerstore, so streams to the peers can be opened by ID.
type peerFinder struct {
	h      *p2p.Host
	c      chainAPI
	bucket chain.StorageBucketID

	mu    sync.Mutex
	cache map[chain.BagID]cachedPeers
	// gen counts invalidations: a look-up that began before one does not
	// write what it read into the cache, so a move's invalidation is never
	// undone by a look-up that read the bag's buckets before the move.
	gen uint64
}

type cachedPeers struct {
	chain []chainPeer
	all   []peer.ID
	at    time.Time
}

// chainPeer is the operator of another storage bucket of a bag, as its
// published metadata names it.
type chainPeer struct {
	ID     peer.ID
	Bucket chain.StorageBucketID
	// Operator is the role account of the storage worker operating Bucket:
	// whoever controls it runs one copy, however many workers, buckets or
	// peer IDs it has on chain.
	Operator chain.Account
}

func newPeerFinder(h *p2p.Host, c chainAPI, bucket chain.StorageBucketID) *peerFinder {
	return &peerFinder{h: h, c: c, bucket: bucket, cache: map[chain.BagID]cachedPeers{}}
}

func (f *peerFinder) invalidate(bag chain.BagID) {
	f.mu.Lock()
	delete(f.cache, bag)
	f.gen++
	f.mu.Unlock()
}

func (f *peerFinder) invalidateAll() {
	f.mu.Lock()
	clear(f.cache)
	f.gen++
	f.mu.Unlock()
}

// cached returns the bag's peers cached less than peerCacheTTL ago and, in
// any case, the generation a look-up starting now passes to store.
func (f *peerFinder) cached(bag chain.BagID) (cachedPeers, bool, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cache[bag]
	return c, ok && time.Since(c.at) < peerCacheTTL, f.gen
}

// store caches what a look-up that began at generation gen found, unless
// the cache was invalidated since: what it read may be from before a move.
func (f *peerFinder) store(bag chain.BagID, gen uint64, c cachedPeers) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen == f.gen {
		f.cache[bag] = c
	}
}

// onChain returns the operators of the bag's storage buckets other than
// this node's, from the chain, adding their published addresses to the
// peerstore. An operator running several of the bag's buckets under one
// peer ID is listed once (with its first bucket): it holds one copy.
func (f *peerFinder) onChain(ctx context.Context, bag chain.BagID) ([]chainPeer, error) {
	b, err := f.c.Bag(ctx, bag)
	if err != nil {
		return nil, err
	}
	return f.operatorsOf(ctx, b)
}

// operatorsOf is onChain for a bag already read: the operators of the
// buckets b lists, read from the chain, never from the cache.
func (f *peerFinder) operatorsOf(ctx context.Context, b chain.Bag) ([]chainPeer, error) {
	var out []chainPeer
	seen := map[peer.ID]bool{}
	for _, id := range b.StorageBuckets {
		if id == f.bucket {
			continue
		}
		bkt, err := f.c.StorageBucket(ctx, id)
		if err != nil {
			return nil, err
		}
		if bkt.OperatorStatus != chain.OperatorActive || bkt.Operator == nil || bkt.Metadata == nil || bkt.Metadata.PeerID == "" {
			continue
		}
		ai, err := p2p.ParseAddrInfo(bkt.Metadata.PeerID, bkt.Metadata.Multiaddrs)
		pid, addrs := ai.ID, ai.Addrs
		if err != nil || pid == f.h.ID() {
			continue
		}
		if len(addrs) > 0 {
			f.h.Libp2p().Peerstore().AddAddrs(pid, addrs, peerstore.AddressTTL)
		}
		if seen[pid] {
			continue
		}
		w, err := f.c.Worker(ctx, chain.StorageGroup, *bkt.Operator)
		if err != nil {
			return nil, err
		}
		seen[pid] = true
		out = append(out, chainPeer{ID: pid, Bucket: id, Operator: w.Account})
	}
	return out, nil
}

// chainPeers returns the operators of the bag's other buckets, cached.
func (f *peerFinder) chainPeers(ctx context.Context, bag chain.BagID) ([]chainPeer, error) {
	c, ok, gen := f.cached(bag)
	if ok {
		return c.chain, nil
	}
	ps, err := f.onChain(ctx, bag)
	if err != nil {
		return nil, err
	}
	all := f.withDHT(ctx, bag, ps)
	f.store(bag, gen, cachedPeers{chain: ps, all: all, at: time.Now()})
	return ps, nil
}

// all returns every peer known to provide the bag: the chain's operators
// first, then the DHT's.
func (f *peerFinder) all(ctx context.Context, bag chain.BagID) []peer.ID {
	c, ok, gen := f.cached(bag)
	if ok {
		return c.all
	}
	ps, err := f.onChain(ctx, bag)
	if err != nil && !errors.Is(err, chain.ErrNotFound) {
		// The DHT may still know peers; keep going without the chain's.
		ps = nil
	}
	all := f.withDHT(ctx, bag, ps)
	f.store(bag, gen, cachedPeers{chain: ps, all: all, at: time.Now()})
	return all
}

// withDHT adds the bag key's DHT providers to the chain's peers, after
// them and at most maxDHTPeers: announcing a bag key costs nothing, so
// the DHT may name any number of peers that never answer, and each is
// tried only once the chain's operators failed.
func (f *peerFinder) withDHT(ctx context.Context, bag chain.BagID, ps []chainPeer) []peer.ID {
	seen := map[peer.ID]bool{f.h.ID(): true}
	var out []peer.ID
	for _, p := range ps {
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p.ID)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, dhtLookupTimeout)
	defer cancel()
	found, _ := f.h.FindProviders(dctx, p2p.BagKey(string(bag)), len(out)+maxDHTPeers)
	others := 0
	for _, ai := range found {
		if seen[ai.ID] || others == maxDHTPeers {
			continue
		}
		seen[ai.ID] = true
		others++
		if len(ai.Addrs) > 0 {
			// Kept only as long as a dial needs them: the peer is named
			// again by the next look-up if it still announces.
			f.h.Libp2p().Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		out = append(out, ai.ID)
	}
	return out
}

// maxOperatorBags bounds the bags whose operators bagOperators keeps.
const maxOperatorBags = 1024

// bagOperators answers whether a peer operates a storage bucket of a bag,
// from the chain alone (the bag and its buckets' metadata; no worker reads,
// no DHT): what an audit result's auditor must be to be kept. Each bag's
// operators are cached for peerCacheTTL, at most maxOperatorBags bags (the
// least recently asked about dropped first), and concurrent look-ups of one
// bag share one chain read, so a flood of results costs one read per bag
// per peerCacheTTL.
type bagOperators struct {
	c chainAPI

	mu       sync.Mutex
	cache    *simplelru.LRU[chain.BagID, operatorSet]
	inflight map[chain.BagID]chan struct{}
	// gen counts forgets: a read that began before one is not cached.
	gen uint64
}

type operatorSet struct {
	ids map[peer.ID]bool
	at  time.Time
}

func newBagOperators(c chainAPI) *bagOperators {
	cache, _ := simplelru.NewLRU[chain.BagID, operatorSet](maxOperatorBags, nil) // errors only for a size <= 0
	return &bagOperators{c: c, cache: cache, inflight: map[chain.BagID]chan struct{}{}}
}

// operates reports whether p is the active operator of a storage bucket of
// bag, as the chain said at most peerCacheTTL ago.
func (o *bagOperators) operates(ctx context.Context, bag chain.BagID, p peer.ID) (bool, error) {
	for {
		o.mu.Lock()
		if set, ok := o.cache.Get(bag); ok && time.Since(set.at) < peerCacheTTL {
			o.mu.Unlock()
			return set.ids[p], nil
		}
		wait, busy := o.inflight[bag]
		if !busy {
			done := make(chan struct{})
			o.inflight[bag] = done
			gen := o.gen
			o.mu.Unlock()
			ids, err := o.read(ctx, bag)
			o.mu.Lock()
			delete(o.inflight, bag)
			if err == nil && gen == o.gen {
				o.cache.Add(bag, operatorSet{ids: ids, at: time.Now()})
			}
			o.mu.Unlock()
			close(done)
			return ids[p], err
		}
		o.mu.Unlock()
		select {
		case <-wait: // read by another look-up (or failed): look again
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// forget drops what is cached of bag's operators: its buckets changed. A
// nil bagOperators (a node without audits) has nothing to drop.
func (o *bagOperators) forget(bag chain.BagID) {
	if o == nil {
		return
	}
	o.mu.Lock()
	o.cache.Remove(bag)
	o.gen++
	o.mu.Unlock()
}

// forgetAll drops every bag's cached operators: some operator's node (its
// peer ID) or status changed.
func (o *bagOperators) forgetAll() {
	if o == nil {
		return
	}
	o.mu.Lock()
	o.cache.Purge()
	o.gen++
	o.mu.Unlock()
}

// read returns the peer IDs of the active operators of bag's buckets.
func (o *bagOperators) read(ctx context.Context, bag chain.BagID) (map[peer.ID]bool, error) {
	b, err := o.c.Bag(ctx, bag)
	if err != nil {
		return nil, err
	}
	ids := map[peer.ID]bool{}
	for _, id := range b.StorageBuckets {
		bkt, err := o.c.StorageBucket(ctx, id)
		if err != nil {
			return nil, err
		}
		if bkt.OperatorStatus != chain.OperatorActive || bkt.Metadata == nil {
			continue
		}
		if pid, err := peer.Decode(bkt.Metadata.PeerID); err == nil {
			ids[pid] = true
		}
	}
	return ids, nil
}
