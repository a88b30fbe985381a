package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

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
