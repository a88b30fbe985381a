package provider

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/verify"
)

// Deltas. Block events are not covered by the app hash (CometBFT's header
// commits to each transaction's code and data, not to its events), so an
// RPC endpoint could forge them. They are only hints of what to read
// again: an event about objects marks those objects, an event about a
// bag's buckets marks the bag, and reconciling reads the chain's state of
// exactly that — one object, or one bag and its object list — through the
// chain client, whose reads are proven when it talks to a remote endpoint
// (chain/rpc.Open). A forged ObjectsDeleted makes the node ask whether the
// object exists; only a not-found the validators signed makes a tombstone.
//
// The whole bucket is listed only at start, after the chain subscription
// failed (events may have been missed), and on the rare reconcile interval
// as a safety net. What waits on peers (a sync with no source yet, a
// cleanup short of confirmations, a failed accept) is retried on the retry
// interval, for the objects and bags concerned only.

// maxDeltaObjects is how many objects one event may name for them to be
// read one by one; more, and the bag's list is read page by page instead.
const maxDeltaObjects = 64

// bagWork is what to reconcile of one bag: the whole bag, or some of its
// objects. An object's value is the deletion evidence its event claimed
// (EvidenceDeleted, EvidenceExpired) or "".
type bagWork struct {
	whole bool
	objs  map[chain.ObjectID]string
}

func (w *bagWork) addObjects(ids []chain.ObjectID, evidence string) {
	if w.whole {
		return
	}
	if len(ids)+len(w.objs) > maxDeltaObjects {
		w.whole, w.objs = true, nil
		return
	}
	if w.objs == nil {
		w.objs = make(map[chain.ObjectID]string, len(ids))
	}
	for _, id := range ids {
		if evidence != "" || w.objs[id] == "" {
			w.objs[id] = evidence
		}
	}
}

func (w *bagWork) merge(o *bagWork) {
	if o.whole {
		w.whole, w.objs = true, nil
		return
	}
	for id, ev := range o.objs {
		w.addObjects([]chain.ObjectID{id}, ev)
	}
}

// reconciler collects what needs reconciling: bags and objects marked by
// events, work to retry later, and whether the whole bucket is due.
type reconciler struct {
	mu    sync.Mutex
	dirty map[chain.BagID]*bagWork
	retry map[chain.BagID]*bagWork
	all   bool
	// retryAll reconciles the whole bucket at the next retry: a full
	// reconcile could not read the bucket.
	retryAll bool
	wake     chan struct{}
}

func newReconciler() *reconciler {
	return &reconciler{dirty: map[chain.BagID]*bagWork{}, retry: map[chain.BagID]*bagWork{}, wake: make(chan struct{}, 1)}
}

func workOf(m map[chain.BagID]*bagWork, b chain.BagID) *bagWork {
	w, ok := m[b]
	if !ok {
		w = &bagWork{}
		m[b] = w
	}
	return w
}

// mark reconciles the whole bag.
func (r *reconciler) mark(b chain.BagID) {
	r.mu.Lock()
	workOf(r.dirty, b).merge(&bagWork{whole: true})
	r.mu.Unlock()
	r.signal()
}

// markObjects reconciles objects of a bag, with the deletion evidence an
// event claims for them ("" for none).
func (r *reconciler) markObjects(b chain.BagID, ids []chain.ObjectID, evidence string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	workOf(r.dirty, b).addObjects(ids, evidence)
	r.mu.Unlock()
	r.signal()
}

func (r *reconciler) markAll() {
	r.mu.Lock()
	r.all = true
	r.mu.Unlock()
	r.signal()
}

// retryLater keeps a bag (ids nil) or some of its objects for the next
// retry.
func (r *reconciler) retryLater(b chain.BagID, ids ...chain.ObjectID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ids == nil {
		workOf(r.retry, b).merge(&bagWork{whole: true})
		return
	}
	workOf(r.retry, b).addObjects(ids, "")
}

// retryAllLater reconciles the whole bucket at the next retry.
func (r *reconciler) retryAllLater() {
	r.mu.Lock()
	r.retryAll = true
	r.mu.Unlock()
}

// retryNow moves the work kept for a retry to the dirty set.
func (r *reconciler) retryNow() {
	r.mu.Lock()
	n := len(r.retry)
	for b, w := range r.retry {
		workOf(r.dirty, b).merge(w)
	}
	clear(r.retry)
	if r.retryAll {
		r.all, r.retryAll, n = true, false, n+1
	}
	r.mu.Unlock()
	if n > 0 {
		r.signal()
	}
}

func (r *reconciler) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the marked work and whether the whole bucket is due.
func (r *reconciler) take() (work map[chain.BagID]*bagWork, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	work, r.dirty = r.dirty, map[chain.BagID]*bagWork{}
	all, r.all = r.all, false
	return work, all
}

// reconcileWork reconciles the bags and objects of one pass.
func (s *Server) reconcileWork(ctx context.Context, work map[chain.BagID]*bagWork) {
	for _, bag := range slices.Sorted(maps.Keys(work)) {
		if ctx.Err() != nil {
			return
		}
		w := work[bag]
		var err error
		if w.whole {
			err = s.reconcileBag(ctx, bag)
		} else {
			err = s.reconcileObjects(ctx, bag, w.objs)
		}
		if err != nil && ctx.Err() == nil {
			s.chainReadFailed(err)
			s.log.Warn("reconcile bag", "bag", bag, "whole", w.whole, "objects", len(w.objs), "err", err)
			if w.whole {
				s.recon.retryLater(bag)
			} else {
				s.recon.retryLater(bag, slices.Collect(maps.Keys(w.objs))...)
			}
		}
	}
}

// chainReadFailed counts a chain answer refused by proof verification:
// the endpoint lied (the error names it).
func (s *Server) chainReadFailed(err error) {
	if errors.Is(err, verify.ErrLyingEndpoint) {
		s.m.chainLies.Inc()
		s.log.Error("the chain endpoint answered what the validators did not sign; nothing was changed on its word", "err", err)
	}
}

// reconcileObjects compares the chain's state of some objects of an
// assigned bag with the store and queues what differs: a sync, an
// acceptance, a tombstone. A bag the node holds but is not assigned is
// reconciled whole (its cleanup needs the bag's buckets).
func (s *Server) reconcileObjects(ctx context.Context, bag chain.BagID, objs map[chain.ObjectID]string) error {
	if !s.isAssigned(bag) {
		return s.reconcileBag(ctx, bag)
	}
	for _, id := range slices.Sorted(maps.Keys(objs)) {
		if err := s.reconcileObject(ctx, bag, id, objs[id]); err != nil {
			return err
		}
	}
	return nil
}

// reconcileObject reconciles one object of an assigned bag. The store is
// read before the chain, as in reconcileBag.
func (s *Server) reconcileObject(ctx context.Context, bag chain.BagID, id chain.ObjectID, evidence string) error {
	if held, ok := s.heldBag(uint64(id)); ok && held != bag {
		// Events are unproven: one naming a held object under another bag
		// is re-read as a look at the bag the object is held under.
		s.log.Warn("a chain event names a held object under another bag; reconciling the bag it is held under", "event_bag", bag, "bag", held, "object", uint64(id))
		s.recon.mark(held)
		return nil
	}
	local := s.holdsLocally(uint64(id))
	o, err := s.c.DataObject(ctx, bag, id)
	switch {
	case err == nil:
		if _, ok := s.tombs.get(uint64(id)); ok {
			s.dropTombstone(uint64(id), "the chain lists the object again")
		}
		if evidence != "" {
			s.m.deletionsRefused.Inc()
			s.log.Warn("a deletion event the chain's state does not confirm: the object exists; keeping it", "bag", bag, "object", uint64(id))
		}
		switch {
		case local && !o.Accepted:
			s.acceptor.add(bag, o.ID)
		case !local:
			s.syncer.add(syncJob{bag: bag, object: o})
		}
		return nil
	case !errors.Is(err, chain.ErrNotFound):
		return err
	}
	s.syncer.dropObject(uint64(id))
	if !local {
		return nil
	}
	if evidence != "" {
		// The event named it deleted and the chain's state (proven, over a
		// remote endpoint) agrees: the event's reason labels the tombstone.
		h, err := s.confirmAbsent(ctx, bag, uint64(id), 0)
		if err == nil {
			s.addTombstone(Tombstone{Object: uint64(id), Bag: bag, Evidence: evidence, Height: h})
		}
	}
	s.reconcileAbsent(ctx, bag, uint64(id))
	return nil
}

// retryDue marks what waits for the retry clock: work kept for a retry and
// the bags of tombstones whose grace has ended.
func (s *Server) retryDue() {
	now := time.Now()
	for _, ts := range s.tombs.list() {
		if !ts.Kept && !now.Before(ts.Due) {
			s.recon.markObjects(ts.Bag, []chain.ObjectID{chain.ObjectID(ts.Object)}, "")
		}
	}
	s.recon.retryNow()
	s.repairs.retry()
}
