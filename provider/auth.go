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
// to a registered object. A GET that served a block's bytes records the
// read (RecordRead), which keeps the object from being removed while it is
// being served; a HAVE, or a GET that served nothing, records none, so
// asking about a deleted object cannot keep it forever.
type servePolicy struct {
	h *holdings
}

// Serves implements FetchPolicy.
func (p *servePolicy) Serves(_ context.Context, c cid.Cid) bool {
	return p.h.holds(c)
}

// RecordRead implements fetch.ReadRecorder.
func (p *servePolicy) RecordRead(c cid.Cid) { p.h.touch(c) }

// holdings is the in-memory index of the objects the node holds: their
// blocks (chunks, interior nodes, root) and when each was last read. The
// block store indexes blocks and manifests by object; this adds the
// reverse map from a block to its objects that the fetch policy, repair
// and cleanup need. It costs about a hundred bytes per chunk.
type holdings struct {
	mu      sync.Mutex
	objects map[uint64]*heldObject
	blocks  map[cid.Cid][]uint64
	bags    map[string]map[uint64]struct{}
}

type heldObject struct {
	bag      string
	root     cid.Cid
	size     uint64
	blocks   []cid.Cid // distinct blocks: root, interior nodes, chunks
	lastRead time.Time
}

func newHoldings() *holdings {
	return &holdings{
		objects: map[uint64]*heldObject{},
		blocks:  map[cid.Cid][]uint64{},
		bags:    map[string]map[uint64]struct{}{},
	}
}

// add records object m as held, replacing an earlier record of it.
func (h *holdings) add(m blockstore.Manifest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.objects[m.Object]; ok {
		h.removeLocked(m.Object)
	}
	o := &heldObject{bag: m.Bag, root: m.Root, size: m.Size, blocks: m.Blocks()}
	h.objects[m.Object] = o
	for _, c := range o.blocks {
		h.blocks[c] = append(h.blocks[c], m.Object)
	}
	if h.bags[m.Bag] == nil {
		h.bags[m.Bag] = map[uint64]struct{}{}
	}
	h.bags[m.Bag][m.Object] = struct{}{}
}

func (h *holdings) remove(obj uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(obj)
}

func (h *holdings) removeLocked(obj uint64) {
	o, ok := h.objects[obj]
	if !ok {
		return
	}
	delete(h.objects, obj)
	for _, c := range o.blocks {
		objs := slices.DeleteFunc(h.blocks[c], func(x uint64) bool { return x == obj })
		if len(objs) == 0 {
			delete(h.blocks, c)
		} else {
			h.blocks[c] = objs
		}
	}
	if b := h.bags[o.bag]; b != nil {
		delete(b, obj)
		if len(b) == 0 {
			delete(h.bags, o.bag)
		}
	}
}

func (h *holdings) has(obj uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.objects[obj]
	return ok
}

// holds reports whether c belongs to a held object.
func (h *holdings) holds(c cid.Cid) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.blocks[c]) > 0
}

// touch reports whether c belongs to a held object and records the read.
func (h *holdings) touch(c cid.Cid) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	objs := h.blocks[c]
	if len(objs) == 0 {
		return false
	}
	now := time.Now()
	for _, o := range objs {
		h.objects[o].lastRead = now
	}
	return true
}

// lastRead returns when a block of obj was last served.
func (h *holdings) lastRead(obj uint64) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.objects[obj]; ok {
		return o.lastRead
	}
	return time.Time{}
}

// objectsOf returns the held objects that contain block c, with the bag of
// each.
func (h *holdings) objectsOf(c cid.Cid) map[uint64]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[uint64]string{}
	for _, o := range h.blocks[c] {
		out[o] = h.objects[o].bag
	}
	return out
}

// blocksOf returns the distinct blocks of a held object.
func (h *holdings) blocksOf(obj uint64) ([]cid.Cid, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o, ok := h.objects[obj]
	if !ok {
		return nil, false
	}
	return slices.Clone(o.blocks), true
}

func (h *holdings) bagList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.bags))
	for b := range h.bags {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

func (h *holdings) bagObjects(bag string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bags[bag])
}

func (h *holdings) objectCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.objects)
}
