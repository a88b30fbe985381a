package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider/blockstore"
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
// limit lowered) is seen within it. Only positive answers are cached, so a
// just-registered object is never refused from a stale miss.
const authCacheTTL = 2 * time.Second

// authCacheMax bounds the cached answers; the cache is emptied when full.
const authCacheMax = 4096

// chainAuth is the Authorizer of the store handler: it answers from the
// chain whether the node may store a chunk.
type chainAuth struct {
	c      chainAPI
	bucket chain.StorageBucketID
	grants grantSource // contract grants of streamed sessions (contracts.go)

	mu      sync.Mutex
	objects map[chain.ObjectRef]cached[chain.DataObject]
	bags    map[chain.BagID]cached[chain.Bag]
	bkt     cached[chain.StorageBucket]
	params  cached[chain.Params]
}

type cached[T any] struct {
	v  T
	at time.Time
}

func (c cached[T]) fresh(now time.Time) bool { return !c.at.IsZero() && now.Sub(c.at) < authCacheTTL }

func newChainAuth(c chainAPI, bucket chain.StorageBucketID) *chainAuth {
	return &chainAuth{
		c:       c,
		bucket:  bucket,
		objects: map[chain.ObjectRef]cached[chain.DataObject]{},
		bags:    map[chain.BagID]cached[chain.Bag]{},
	}
}

// invalidate drops every cached answer, after an event that may change
// them (a bag moved, the bucket's limits changed).
func (a *chainAuth) invalidate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.objects)
	clear(a.bags)
	a.bkt = cached[chain.StorageBucket]{}
	a.params = cached[chain.Params]{}
}

func (a *chainAuth) object(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	ref := chain.ObjectRef{Bag: bag, ID: id}
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.objects[ref]; ok && c.fresh(now) {
		a.mu.Unlock()
		return c.v, nil
	}
	a.mu.Unlock()
	o, err := a.c.DataObject(ctx, bag, id)
	if err != nil {
		return o, err
	}
	a.mu.Lock()
	if len(a.objects) >= authCacheMax {
		clear(a.objects)
	}
	a.objects[ref] = cached[chain.DataObject]{o, now}
	a.mu.Unlock()
	return o, nil
}

func (a *chainAuth) bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.bags[id]; ok && c.fresh(now) {
		a.mu.Unlock()
		return c.v, nil
	}
	a.mu.Unlock()
	b, err := a.c.Bag(ctx, id)
	if err != nil {
		return b, err
	}
	a.mu.Lock()
	if len(a.bags) >= authCacheMax {
		clear(a.bags)
	}
	a.bags[id] = cached[chain.Bag]{b, now}
	a.mu.Unlock()
	return b, nil
}

func (a *chainAuth) storageBucket(ctx context.Context) (chain.StorageBucket, error) {
	now := time.Now()
	a.mu.Lock()
	if a.bkt.fresh(now) {
		v := a.bkt.v
		a.mu.Unlock()
		return v, nil
	}
	a.mu.Unlock()
	b, err := a.c.StorageBucket(ctx, a.bucket)
	if err != nil {
		return b, err
	}
	a.mu.Lock()
	a.bkt = cached[chain.StorageBucket]{b, now}
	a.mu.Unlock()
	return b, nil
}

func (a *chainAuth) chainParams(ctx context.Context) (chain.Params, error) {
	now := time.Now()
	a.mu.Lock()
	if a.params.fresh(now) {
		v := a.params.v
		a.mu.Unlock()
		return v, nil
	}
	a.mu.Unlock()
	p, err := a.c.Params(ctx)
	if err != nil {
		return p, err
	}
	a.mu.Lock()
	a.params = cached[chain.Params]{p, now}
	a.mu.Unlock()
	return p, nil
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

// holdings answers which objects the node holds, and which blocks are
// theirs, from the block store's index: the manifests and the
// block → object references PutManifest writes and DeleteObject removes.
// Only bound objects are there, so a block only an upload session holds is
// no held object's. The index is not mirrored in memory (that cost about a
// hundred bytes per chunk, gigabytes on a large node, rebuilt at every
// start); what is kept is bounded by what is being read or removed: when
// each object read within the serve grace was last read, and the objects
// being removed, which are no longer served.
type holdings struct {
	bs    *blockstore.Store
	grace time.Duration // a read older than this protects nothing

	// mu is held shared by every answer that reads the index and
	// exclusively to withdraw an object, so once withdrawUnlessRead
	// returns no answer given from before it is still being computed.
	mu       sync.RWMutex
	removing map[uint64]int // object → removals under way
	// generation counts the removals that ended (restore), deleted or
	// not, so a read stamped after its look-up (stamp) knows whether an
	// object it found may be gone since. A removal whose deletion failed
	// may still have deleted the object (the store can fail after its index
	// commit, cleaning up the blocks), so every restore counts.
	generation uint64

	readMu  sync.Mutex
	reads   map[uint64]time.Time // object → last read, within the grace
	pruneAt int                  // prune reads when it grows to this
}

// readsPruneMin is the size below which the read times are not pruned.
const readsPruneMin = 1024

func newHoldings(bs *blockstore.Store, grace time.Duration) *holdings {
	return &holdings{
		bs:       bs,
		grace:    grace,
		removing: map[uint64]int{},
		reads:    map[uint64]time.Time{},
		pruneAt:  readsPruneMin,
	}
}

// withdrawUnlessRead stops serving object obj before it is deleted, unless
// it was read within the serve grace, and returns that read's time when it
// refuses. From its return no answer counts obj as held; restore undoes it.
// The check and the mark are one step under mu, which stamp holds while it
// records a read: a read that got in before is seen, one after finds obj
// withdrawn.
func (h *holdings) withdrawUnlessRead(obj uint64, now time.Time) (last time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	last = h.lastRead(obj)
	if !last.IsZero() && now.Sub(last) < h.grace {
		return last, false
	}
	h.removing[obj]++
	return time.Time{}, true
}

// restore ends a withdraw of obj. The store's index answers again: if the
// deletion failed before the manifest went, obj is served again. A deleted
// object's read time goes with it. Whether or not deleted, restore starts a
// new generation, so a read looked up before it is looked up again when
// stamped: a deletion that failed after its index commit leaves obj gone,
// and its read time must not come back either.
func (h *holdings) restore(obj uint64, deleted bool) {
	h.mu.Lock()
	if h.removing[obj]--; h.removing[obj] <= 0 {
		delete(h.removing, obj)
	}
	h.generation++
	h.mu.Unlock()
	if deleted {
		h.readMu.Lock()
		delete(h.reads, obj)
		h.readMu.Unlock()
	}
}

// heldLocked reports whether obj is not being removed. Call it with mu held.
func (h *holdings) heldLocked(obj uint64) bool { return h.removing[obj] == 0 }

// has reports whether the node holds object obj.
func (h *holdings) has(obj uint64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.heldLocked(obj) {
		return false
	}
	ok, err := h.bs.HasObject(obj)
	return err == nil && ok
}

// heldOf lists the held objects that contain block c. Call it with mu held.
func (h *holdings) heldOf(c cid.Cid) ([]uint64, error) {
	objs, err := h.bs.ObjectsOf(c)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o uint64) bool { return !h.heldLocked(o) }), nil
}

// holds reports whether c belongs to a held object. It runs on every fetch
// HAVE: with nothing being removed it is one index seek. An unreadable
// index serves nothing.
func (h *holdings) holds(c cid.Cid) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.removing) == 0 {
		ok, err := h.bs.HasObjectWithBlock(c)
		return err == nil && ok
	}
	objs, err := h.heldOf(c)
	return err == nil && len(objs) > 0
}

// lookUp returns the held objects that contain c, from one index look-up
// (none if the index cannot be read), and the generation they were found
// at. It runs on every fetch GET; stamp records the read.
func (h *holdings) lookUp(c cid.Cid) (objs []uint64, at uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	objs, err := h.heldOf(c)
	if err != nil {
		return nil, 0
	}
	return objs, h.generation
}

// stamp records a read of c's objects objs, found by lookUp at generation
// at, once the reply carrying the block was built. An object withdrawn
// since is not stamped (recordLocked skips it); if a removal ended since,
// deleted or not, objs may name a gone object, so they are looked up
// again: a deleted object's read time, dropped by restore or never kept,
// does not come back.
func (h *holdings) stamp(c cid.Cid, objs []uint64, at uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.generation != at {
		var err error
		if objs, err = h.heldOf(c); err != nil {
			return
		}
	}
	h.recordLocked(objs)
}

// recordLocked stamps the objects of objs not being removed as read now.
// Call it with mu held (shared): a withdraw, which takes mu exclusively,
// then sees the read or is seen by it.
func (h *holdings) recordLocked(objs []uint64) {
	now := time.Now()
	h.readMu.Lock()
	defer h.readMu.Unlock()
	for _, o := range objs {
		if h.heldLocked(o) {
			h.reads[o] = now
		}
	}
	if len(h.reads) >= h.pruneAt {
		h.pruneLocked(now)
	}
}

// pruneLocked forgets reads older than the grace: they no longer keep an
// object from removal, so lastRead may as well say never. The next prune
// waits until the map has doubled, so pruning costs O(1) per read.
func (h *holdings) pruneLocked(now time.Time) {
	for o, t := range h.reads {
		if now.Sub(t) >= h.grace {
			delete(h.reads, o)
		}
	}
	h.pruneAt = max(2*len(h.reads), readsPruneMin)
}

// lastRead returns when a block of obj was last served, or the zero time if
// not within the serve grace.
func (h *holdings) lastRead(obj uint64) time.Time {
	h.readMu.Lock()
	defer h.readMu.Unlock()
	return h.reads[obj]
}

// objectsOf returns the held objects that contain block c, with the bag of
// each.
func (h *holdings) objectsOf(c cid.Cid) (map[uint64]string, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	objs, err := h.heldOf(c)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]string, len(objs))
	for _, o := range objs {
		bag, ok, err := h.bs.ObjectBag(o)
		if err != nil {
			return nil, err
		}
		if ok {
			out[o] = bag
		}
	}
	return out, nil
}

// blocksOf returns the distinct blocks of a held object.
func (h *holdings) blocksOf(obj uint64) ([]cid.Cid, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.heldLocked(obj) {
		return nil, false
	}
	m, ok, err := h.bs.Manifest(obj)
	if err != nil || !ok {
		return nil, false
	}
	return m.Blocks(), true
}

// bagList lists, in order, the bags of which the node holds objects.
func (h *holdings) bagList() ([]string, error) { return h.bs.Bags() }

// hasBag reports whether the node holds objects of bag. An unreadable
// index counts as holding: callers keep and announce what they cannot
// rule out.
func (h *holdings) hasBag(bag string) bool {
	ok, err := h.bs.HasObjects(bag)
	return err != nil || ok
}

// bagObjects counts the objects of bag the node holds, 0 if the index
// cannot be read.
func (h *holdings) bagObjects(bag string) int {
	n, _ := h.bs.CountObjects(bag)
	return n
}

// objectCount counts the objects the node holds.
func (h *holdings) objectCount() int { return int(h.bs.Stats().Objects) }
