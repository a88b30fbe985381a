package provider

import (
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/provider/blockstore"
)

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
