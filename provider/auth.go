package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// ErrNotAuthorized means the data directory does not let this node store
// what was offered: the object is not registered in the bag, the bag is
// not assigned to the node's bucket, the content is blacklisted or the
// bucket is over its voucher limits. The error's text names which and what
// to do; the store handler sends it as the refusal's reason.
var ErrNotAuthorized = errors.New("provider: not authorized by the data directory")

// authCacheTTL is how long a chain answer is reused by the authorizer. An
// upload asks about the same object once per chunk; a short cache turns
// thousands of queries into a few, and a change on chain (a bag moved, a
// limit lowered) is seen within it.
const authCacheTTL = 2 * time.Second

// authMissTTL is how long a not-found (an object or a bag the chain does
// not have) is reused: about a block. Any peer can name objects that do not
// exist, and each miss through the proof-checking transport costs a wait
// for the next block; the uploader of an object registered meanwhile has
// its chunks refused for at most this long and retries (the follower also
// drops the misses of objects it sees registered).
const authMissTTL = time.Second

// authCacheMax bounds the cached answers: found ones are emptied when full,
// misses are evicted least recently used first.
const authCacheMax = 4096

// chainAuth is the Authorizer of the store handler: it answers from the
// chain whether the node may store a chunk. Identical reads in flight are
// merged (flight), and the reads it makes are bounded per peer and in all
// (limit).
type chainAuth struct {
	c      chainAPI
	bucket chain.StorageBucketID
	grants grantSource // contract grants of streamed sessions (contracts.go)
	flight singleflight.Group
	limit  *authLimiter
	// reads counts chain reads by result (found, not_found, failed, busy:
	// no slot in time); missHits the answers given from a cached miss.
	reads    *prometheus.CounterVec
	missHits prometheus.Counter

	mu      sync.Mutex
	gen     uint64 // counts invalidations: a read begun before one is not cached
	objects map[chain.ObjectRef]cached[chain.DataObject]
	bags    map[chain.BagID]cached[chain.Bag]
	missing *lru.LRU[string, miss] // not-founds by read key
	bkt     cached[chain.StorageBucket]
	params  cached[chain.Params]
}

// miss is a not-found answer and when it was read.
type miss struct {
	err error
	at  time.Time
}

type cached[T any] struct {
	v  T
	at time.Time
}

func (c cached[T]) fresh(now time.Time) bool { return !c.at.IsZero() && now.Sub(c.at) < authCacheTTL }

func newChainAuth(c chainAPI, bucket chain.StorageBucketID) *chainAuth {
	missing, _ := lru.NewLRU[string, miss](authCacheMax, nil)
	return &chainAuth{
		c:       c,
		bucket:  bucket,
		limit:   newAuthLimiter(authReadsPerPeer, authReadsAll),
		objects: map[chain.ObjectRef]cached[chain.DataObject]{},
		bags:    map[chain.BagID]cached[chain.Bag]{},
		missing: missing,
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "satchel", Subsystem: "provider", Name: "auth_chain_reads_total",
			Help: "Chain reads of the upload authorizer by result: found, not_found, failed, busy (no read slot in time)."}, []string{"result"}),
		missHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "satchel", Subsystem: "provider", Name: "auth_cached_misses_total",
			Help: "Authorizer look-ups answered not found from a miss cached within the last block."}),
	}
}

// invalidate drops every cached answer, after an event that may change
// them (a bag moved, the bucket's limits changed).
func (a *chainAuth) invalidate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	clear(a.objects)
	clear(a.bags)
	a.missing.Purge()
	a.bkt = cached[chain.StorageBucket]{}
	a.params = cached[chain.Params]{}
}

// registered drops the cached misses of objects of bag, which the chain
// has just registered.
func (a *chainAuth) registered(bag chain.BagID, ids []chain.ObjectID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		a.missing.Remove(objectKey(bag, id))
	}
}

func objectKey(bag chain.BagID, id chain.ObjectID) string { return fmt.Sprintf("o/%s/%d", bag, id) }

// authRead is one kind of chain read of the authorizer: key names it (for
// merging and for its cached miss), hit returns its cached found answer,
// fetch reads it, keep caches a found answer. hit and keep run with a.mu
// held.
type authRead[T any] struct {
	key   string
	hit   func(now time.Time) (T, bool)
	fetch func(context.Context) (T, error)
	keep  func(v T, at time.Time)
}

// cachedLocked returns r's cached answer, found or a miss younger than
// authMissTTL; a.mu is held.
func cachedLocked[T any](a *chainAuth, r authRead[T], now time.Time) (v T, err error, ok bool) {
	if v, ok := r.hit(now); ok {
		return v, nil, true
	}
	if m, ok := a.missing.Get(r.key); ok && now.Sub(m.at) < authMissTTL {
		a.missHits.Inc()
		return v, m.err, true
	}
	return v, nil, false
}

// read answers r from the cache, or from the chain: once for every caller
// asking the same meanwhile, in a slot of the limiter. A found answer and a
// not-found are cached unless the cache was invalidated during the read.
func read[T any](a *chainAuth, ctx context.Context, r authRead[T]) (T, error) {
	a.mu.Lock()
	gen := a.gen
	v, err, ok := cachedLocked(a, r, time.Now())
	a.mu.Unlock()
	if ok {
		return v, err
	}
	do := func() (any, error) {
		// A read that ended just before this one began left its answer.
		a.mu.Lock()
		v, err, ok := cachedLocked(a, r, time.Now())
		a.mu.Unlock()
		if ok {
			return v, err
		}
		release, err := a.limit.acquire(ctx)
		if err != nil {
			a.reads.WithLabelValues("busy").Inc()
			return v, err
		}
		defer release()
		at := time.Now()
		v, err = r.fetch(ctx)
		a.reads.WithLabelValues(readResult(err)).Inc()
		a.mu.Lock()
		defer a.mu.Unlock()
		switch {
		case a.gen != gen:
		case err == nil:
			r.keep(v, at)
		case errors.Is(err, chain.ErrNotFound):
			a.missing.Add(r.key, miss{err, at})
		}
		return v, err
	}
	for attempt := 1; ; attempt++ {
		v, err, _ := a.flight.Do(fmt.Sprintf("%d/%s", gen, r.key), do)
		// A lookup joined another caller's, which gave up (its context
		// ended): ask again while this caller's context lasts (a few
		// times: a transport's own timeout looks the same).
		if err != nil && ctx.Err() == nil && attempt < 3 && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		t, _ := v.(T)
		return t, err
	}
}

func readResult(err error) string {
	switch {
	case err == nil:
		return "found"
	case errors.Is(err, chain.ErrNotFound):
		return "not_found"
	}
	return "failed"
}

// freshHit returns the fresh found answer m caches for k, if any: every
// chunk of an upload asks the same four questions, and a hit is answered
// before read builds its key and closures.
func freshHit[K comparable, T any](a *chainAuth, m map[K]cached[T], k K) (T, bool) {
	a.mu.Lock()
	c, ok := m[k]
	a.mu.Unlock()
	return c.v, ok && c.fresh(time.Now())
}

func (a *chainAuth) object(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	ref := chain.ObjectRef{Bag: bag, ID: id}
	if o, ok := freshHit(a, a.objects, ref); ok {
		return o, nil
	}
	return read(a, ctx, authRead[chain.DataObject]{
		key: objectKey(bag, id),
		hit: func(now time.Time) (chain.DataObject, bool) {
			c, ok := a.objects[ref]
			return c.v, ok && c.fresh(now)
		},
		fetch: func(ctx context.Context) (chain.DataObject, error) { return a.c.DataObject(ctx, bag, id) },
		keep: func(o chain.DataObject, at time.Time) {
			if len(a.objects) >= authCacheMax {
				clear(a.objects)
			}
			a.objects[ref] = cached[chain.DataObject]{o, at}
		},
	})
}

func (a *chainAuth) bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	if b, ok := freshHit(a, a.bags, id); ok {
		return b, nil
	}
	return read(a, ctx, authRead[chain.Bag]{
		key: "b/" + string(id),
		hit: func(now time.Time) (chain.Bag, bool) {
			c, ok := a.bags[id]
			return c.v, ok && c.fresh(now)
		},
		fetch: func(ctx context.Context) (chain.Bag, error) { return a.c.Bag(ctx, id) },
		keep: func(b chain.Bag, at time.Time) {
			if len(a.bags) >= authCacheMax {
				clear(a.bags)
			}
			a.bags[id] = cached[chain.Bag]{b, at}
		},
	})
}

func (a *chainAuth) storageBucket(ctx context.Context) (chain.StorageBucket, error) {
	a.mu.Lock()
	bkt := a.bkt
	a.mu.Unlock()
	if bkt.fresh(time.Now()) {
		return bkt.v, nil
	}
	return read(a, ctx, authRead[chain.StorageBucket]{
		key:   "bucket",
		hit:   func(now time.Time) (chain.StorageBucket, bool) { return a.bkt.v, a.bkt.fresh(now) },
		fetch: func(ctx context.Context) (chain.StorageBucket, error) { return a.c.StorageBucket(ctx, a.bucket) },
		keep:  func(b chain.StorageBucket, at time.Time) { a.bkt = cached[chain.StorageBucket]{b, at} },
	})
}

func (a *chainAuth) chainParams(ctx context.Context) (chain.Params, error) {
	a.mu.Lock()
	params := a.params
	a.mu.Unlock()
	if params.fresh(time.Now()) {
		return params.v, nil
	}
	return read(a, ctx, authRead[chain.Params]{
		key:   "params",
		hit:   func(now time.Time) (chain.Params, bool) { return a.params.v, a.params.fresh(now) },
		fetch: a.c.Params,
		keep:  func(p chain.Params, at time.Time) { a.params = cached[chain.Params]{p, at} },
	})
}

// assigned checks that bag exists and is stored by the node's bucket.
func (a *chainAuth) assigned(ctx context.Context, bag string) (chain.BagID, error) {
	id, err := chain.ParseBagID(bag)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotAuthorized, err)
	}
	b, err := a.bag(ctx, id)
	if err != nil {
		if errors.Is(err, chain.ErrNotFound) {
			return "", fmt.Errorf("%w: %v", ErrNotAuthorized, err)
		}
		return "", fmt.Errorf("provider: read bag %s from the chain: %w", id, err)
	}
	if !b.HasStorageBucket(a.bucket) {
		return "", fmt.Errorf("%w: bag %s is not assigned to storage bucket %d (it is stored by buckets %v); push it to the providers the chain names for the bag", ErrNotAuthorized, id, a.bucket, b.StorageBuckets)
	}
	return id, nil
}

// AuthorizeChunk implements Authorizer: the chunks of object may be stored
// when the object is registered in bag (pending or accepted), the bag is
// assigned to the node's bucket, its content ID is not blacklisted and the
// bucket is within its voucher limits. It returns the object's content ID,
// the root every chunk's proof must lead to.
func (a *chainAuth) AuthorizeChunk(ctx context.Context, bag string, object uint64) (cid.Cid, error) {
	id, err := a.assigned(ctx, bag)
	if err != nil {
		return cid.Undef, err
	}
	o, err := a.object(ctx, id, chain.ObjectID(object))
	if err != nil {
		if errors.Is(err, chain.ErrNotFound) {
			return cid.Undef, fmt.Errorf("%w: %v; register the object on chain before pushing its chunks", ErrNotAuthorized, err)
		}
		return cid.Undef, fmt.Errorf("provider: read object %d of bag %s from the chain: %w", object, id, err)
	}
	root, err := cid.Decode(o.ContentID)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: object %d has an unreadable content ID %q: %v", ErrNotAuthorized, object, o.ContentID, err)
	}
	p, err := a.chainParams(ctx)
	if err != nil {
		return cid.Undef, fmt.Errorf("provider: read chain parameters: %w", err)
	}
	if p.Blacklisted(o.ContentID) {
		return cid.Undef, fmt.Errorf("%w: content ID %s of object %d is blacklisted by the storage lead", ErrNotAuthorized, o.ContentID, object)
	}
	b, err := a.storageBucket(ctx)
	if err != nil {
		return cid.Undef, fmt.Errorf("provider: read storage bucket %d: %w", a.bucket, err)
	}
	if v := b.Voucher; v.ObjectsUsed > v.ObjectsLimit || v.SizeUsed > v.SizeLimit {
		return cid.Undef, fmt.Errorf("%w: storage bucket %d is over its voucher limits (%d/%d objects, %d/%d bytes); ask the storage lead to raise them", ErrNotAuthorized, a.bucket, v.ObjectsUsed, v.ObjectsLimit, v.SizeUsed, v.SizeLimit)
	}
	return root, nil
}

// ObjectSize implements Authorizer: the size object was registered with in
// bag, which its voucher was charged for. BIND refuses a DAG of any other
// size. The bag must still be assigned to the node's bucket.
func (a *chainAuth) ObjectSize(ctx context.Context, bag string, object uint64) (uint64, error) {
	id, err := a.assigned(ctx, bag)
	if err != nil {
		return 0, err
	}
	o, err := a.object(ctx, id, chain.ObjectID(object))
	if err != nil {
		if errors.Is(err, chain.ErrNotFound) {
			return 0, fmt.Errorf("%w: %v; register the object on chain before binding it", ErrNotAuthorized, err)
		}
		return 0, fmt.Errorf("provider: read object %d of bag %s from the chain: %w", object, id, err)
	}
	return o.Size, nil
}

// AuthorizeSession implements Authorizer: a streamed upload whose root is
// not known yet may hold n bytes for bag while the bag is assigned to the
// node's bucket and n fits in the bucket's free voucher size — the bytes
// the chain would let the bag's owner register.
func (a *chainAuth) AuthorizeSession(ctx context.Context, bag string, n uint64) error {
	if _, err := a.assigned(ctx, bag); err != nil {
		return err
	}
	b, err := a.storageBucket(ctx)
	if err != nil {
		return fmt.Errorf("provider: read storage bucket %d: %w", a.bucket, err)
	}
	v := b.Voucher
	if !v.Room(0, n) {
		free := uint64(0)
		if v.SizeLimit > v.SizeUsed {
			free = v.SizeLimit - v.SizeUsed
		}
		return fmt.Errorf("%w: storage bucket %d has %d bytes of voucher room, the upload session holds %d; ask the storage lead to raise its limit", ErrNotAuthorized, a.bucket, free, n)
	}
	return nil
}

// servePolicy is the FetchPolicy of the fetch handler: a block is served
// when it belongs to an object the node holds, i.e. a bound object of a bag
// it stores. Unbound session chunks are not served: nothing yet ties them
// to a registered object. A GET is decided by ServeRead, from one look-up of
// the block's objects in the index; once the GET's reply carrying the
// block's bytes is built (before it is written), its done stamps those
// objects as read, which keeps them from being removed while they are being
// served. A HAVE (Serves), or a GET answered without the bytes, records no
// read, so asking about a deleted object cannot keep it forever.
type servePolicy struct {
	h *holdings
}

var _ fetch.ReadPolicy = (*servePolicy)(nil)

// Serves implements FetchPolicy; the fetch handler asks it for HAVE.
func (p *servePolicy) Serves(_ context.Context, c cid.Cid) bool {
	return p.h.holds(c)
}

// ServeRead implements fetch.ReadPolicy: c is served when the index names
// a held object containing it, and done records a read of those objects.
func (p *servePolicy) ServeRead(_ context.Context, c cid.Cid) (done func(), ok bool) {
	objs, at := p.h.lookUp(c)
	if len(objs) == 0 {
		return nil, false
	}
	return func() { p.h.stamp(c, objs, at) }, true
}
