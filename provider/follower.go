package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// The follower turns the chain into work. Events are hints: each one marks
// the bags it concerns dirty, and reconciling a bag compares the chain's
// state of the bag with the store and queues what differs — objects to
// sync, to accept, to remove, a bag to clean up. A periodic full reconcile
// of every bag covers missed events and retries what waits on peers.

// stateFileName is the follower's state file in the state directory.
const stateFileName = "provider-state.json"

// catchUpGap is how many blocks behind the chain a restarted follower may
// be and still replay the events it missed. Further behind it jumps to the
// chain's head: the full reconcile at start brings the store up to date
// either way, and replaying a long downtime block by block would only
// delay it.
const catchUpGap = 10_000

// stateSaveInterval is how often the follower's height is saved while it
// changes. Losing the last few seconds on a crash only replays their
// events, which reconciling makes harmless.
const stateSaveInterval = 2 * time.Second

// Resubscribe backoff after the chain connection fails.
const (
	resubscribeMin = 500 * time.Millisecond
	resubscribeMax = 30 * time.Second
)

// nodeState is what the follower keeps across restarts.
type nodeState struct {
	// Height is the last block whose events were handled.
	Height int64 `json:"height"`
	// Bags are the bags the node has held objects of, so it still finds
	// and cleans up a bag that moved away while it was down.
	Bags []chain.BagID `json:"bags"`
}

// stateFile persists nodeState as JSON, replaced atomically.
type stateFile struct {
	path string // "" keeps the state in memory only

	mu    sync.Mutex
	st    nodeState
	dirty bool
}

func newStateFile(dir string) *stateFile {
	f := &stateFile{}
	if dir != "" {
		f.path = filepath.Join(dir, stateFileName)
	}
	return f
}

func (f *stateFile) load() error {
	if f.path == "" {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("provider: read state: %w", err)
	}
	var st nodeState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("provider: state file %s is damaged (%v); delete it: the node rebuilds it from the chain", f.path, err)
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// save writes the state if it changed, durably: a temporary file is synced
// and renamed over the old one.
func (f *stateFile) save() error {
	f.mu.Lock()
	if !f.dirty || f.path == "" {
		f.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(f.st)
	f.dirty = false
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(f.path, b, 0o600); err != nil {
		return fmt.Errorf("provider: save state: %w", err)
	}
	return nil
}

func (f *stateFile) height() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Height
}

func (f *stateFile) setHeight(h int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h > f.st.Height {
		f.st.Height = h
		f.dirty = true
	}
}

func (f *stateFile) bags() []chain.BagID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.st.Bags)
}

func (f *stateFile) addBag(b chain.BagID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, found := slices.BinarySearch(f.st.Bags, b); !found {
		f.st.Bags = slices.Insert(f.st.Bags, i, b)
		f.dirty = true
	}
}

func (f *stateFile) removeBag(b chain.BagID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, found := slices.BinarySearch(f.st.Bags, b); found {
		f.st.Bags = slices.Delete(f.st.Bags, i, i+1)
		f.dirty = true
	}
}

// stateLoop saves the state while it changes.
func (s *Server) stateLoop(ctx context.Context) {
	t := time.NewTicker(stateSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.state.save(); err != nil {
				s.log.Warn("save follower state", "err", err)
			}
		}
	}
}

// followLoop subscribes to the chain's blocks from the one after the saved
// height (or after the height the node started at) and marks what their
// events concern. The events of a block are handled once the next block is
// committed: a proven read answers at the height the last signed header
// covers, one below the chain's head, and it must see the block's changes.
// It resubscribes after a failure, and then reconciles the whole bucket:
// events may have been missed.
func (s *Server) followLoop(ctx context.Context, saved, startHeight int64) {
	from := saved + 1
	if saved <= 0 || startHeight-saved > catchUpGap {
		// Nothing saved, or too far behind: the full reconcile at start
		// covers everything up to startHeight.
		from = startHeight + 1
	}
	backoff := resubscribeMin
	for {
		blocks, errc := s.c.Subscribe(ctx, from)
		var held *chain.BlockEvents
		for be := range blocks {
			if held != nil {
				s.handleBlock(*held)
				from = held.Height + 1
			}
			held = &be
			backoff = resubscribeMin
		}
		// A block held back is asked for again from the next subscription.
		err := <-errc
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("chain subscription ended; resubscribing", "from", from, "err", err, "in", backoff)
		if !ctxsleep.Sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, resubscribeMax)
		// Events may have been missed while the connection was down.
		s.recon.markAll()
	}
}

// handleBlock marks what the block's events concern.
func (s *Server) handleBlock(be chain.BlockEvents) {
	for _, ev := range be.Events {
		s.handleEvent(ev, be.Height)
	}
	s.state.setHeight(be.Height)
	s.m.chainHeight.Set(float64(be.Height))
}

// objectsEvent marks the objects an event names: one by one in a bag
// assigned to the node, the whole bag when it is only held (its cleanup
// reads the bag's buckets).
func (s *Server) objectsEvent(bag chain.BagID, ids []chain.ObjectID, evidence string) {
	switch {
	case s.isAssigned(bag):
		s.recon.markObjects(bag, ids, evidence)
	case s.cares(bag):
		s.recon.mark(bag)
	}
}

func (s *Server) handleEvent(ev chain.Event, height int64) {
	mine := s.id.Bucket
	switch ev.Type {
	case chain.ObjectsRegistered{}.EventType():
		var e chain.ObjectsRegistered
		if ev.Decode(&e) == nil {
			ids := make([]chain.ObjectID, len(e.Objects))
			for i, o := range e.Objects {
				ids[i] = o.ID
			}
			s.auth.registered(e.Bag, ids)
			s.objectsEvent(e.Bag, ids, "")
		}
	case chain.ObjectsAccepted{}.EventType():
		var e chain.ObjectsAccepted
		if ev.Decode(&e) == nil {
			s.objectsEvent(e.Bag, e.Objects, "")
		}
	case chain.ObjectsDeleted{}.EventType():
		var e chain.ObjectsDeleted
		if ev.Decode(&e) == nil {
			// The event is a claim: the objects are read again, and only
			// the chain's state confirming their absence makes tombstones.
			evidence := EvidenceDeleted
			if e.Reason == chain.DeletedExpired {
				evidence = EvidenceExpired
			}
			s.objectsEvent(e.Bag, e.Objects, evidence)
		}
	case chain.BagCreated{}.EventType():
		var e chain.BagCreated
		if ev.Decode(&e) == nil && slices.Contains(e.StorageBuckets, mine) {
			s.auth.invalidate()
			s.recon.mark(e.Bag)
		}
	case chain.BagDeleted{}.EventType():
		var e chain.BagDeleted
		if ev.Decode(&e) == nil && (s.cares(e.Bag) || slices.Contains(e.StorageBuckets, mine)) {
			s.auth.invalidate()
			s.recon.mark(e.Bag)
		}
	case chain.StorageBagBucketsUpdated{}.EventType():
		var e chain.StorageBagBucketsUpdated
		if ev.Decode(&e) != nil {
			return
		}
		s.peers.invalidate(e.Bag)
		s.auditOperators().forget(e.Bag)
		if s.cares(e.Bag) || slices.Contains(e.Added, mine) || slices.Contains(e.Removed, mine) {
			s.auth.invalidate()
			s.recon.mark(e.Bag)
		} else {
			// Another bag's providers changed: a cleanup of a bag moved
			// away may now find its confirmations.
			s.recon.retryNow()
		}
	case chain.StorageOperatorMetadataSet{}.EventType(), chain.StorageOperatorRemoved{}.EventType(),
		chain.StorageInvitationAccepted{}.EventType():
		// Peers of some bags moved: cleanups waiting for confirmations and
		// syncs waiting for a source may now succeed. Retry those; the
		// bucket's own lists did not change.
		s.peers.invalidateAll()
		s.auditOperators().forgetAll()
		if s.audits != nil {
			s.audits.relay.operators.Forget()
		}
		s.recon.retryNow()
		var e struct {
			Bucket chain.StorageBucketID `json:"bucket"`
		}
		if ev.Type == (chain.StorageOperatorRemoved{}).EventType() && ev.Decode(&e) == nil && e.Bucket == mine {
			s.log.Error("this node's worker was removed as the operator of its bucket; it can no longer accept uploads", "worker", uint64(s.id.Worker))
		}
	case chain.StorageBucketDeleted{}.EventType():
		var e chain.StorageBucketDeleted
		if ev.Decode(&e) == nil && e.Bucket == mine {
			s.auth.invalidate()
			s.recon.markAll() // reports errNoBucket, once the chain confirms it
		}
	case chain.StorageBucketVoucherLimitsSet{}.EventType(), chain.StorageBucketStatusUpdated{}.EventType(),
		chain.BlacklistUpdated{}.EventType(), chain.UploadingBlockedUpdated{}.EventType():
		s.auth.invalidate()
	}
}

// cares reports whether bag is assigned to the node's bucket or held by it.
func (s *Server) cares(bag chain.BagID) bool {
	if s.isAssigned(bag) {
		return true
	}
	return s.holdings.hasBag(string(bag)) || slices.Contains(s.state.bags(), bag)
}

// errNoBucket means the node's bucket no longer exists on chain.
var errNoBucket = errors.New("provider: storage bucket vanished from the chain")

// isAssigned reports whether the last reconcile saw bag assigned to the
// node's bucket.
func (s *Server) isAssigned(bag chain.BagID) bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.assignedBags[bag]
}

// setAssigned records whether bag is assigned and reports whether that
// changed.
func (s *Server) setAssigned(bag chain.BagID, on bool) bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.assignedBags == nil {
		s.assignedBags = map[chain.BagID]bool{}
	}
	if s.assignedBags[bag] == on {
		return false
	}
	if on {
		s.assignedBags[bag] = true
	} else {
		delete(s.assignedBags, bag)
	}
	return true
}

func (s *Server) assignedList() []chain.BagID {
	s.amu.Lock()
	defer s.amu.Unlock()
	out := make([]chain.BagID, 0, len(s.assignedBags))
	for b := range s.assignedBags {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

// reconcileLoop reconciles what events marked as it comes, retries what
// waits on the retry interval, and the whole bucket on the reconcile
// interval.
func (s *Server) reconcileLoop(ctx context.Context) {
	full := time.NewTicker(s.cfg.reconcileInterval)
	defer full.Stop()
	retry := time.NewTicker(min(s.cfg.retryInterval, s.cfg.reconcileInterval))
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.recon.wake:
		case <-full.C:
			s.recon.markAll()
			s.retryDue()
			continue // the mark woke the loop
		case <-retry.C:
			s.retryDue()
			continue
		}
		work, all := s.recon.take()
		if all {
			s.m.fullReconciles.Inc()
			more, err := s.allBags(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.chainReadFailed(err)
				s.log.Warn("full reconcile: read the bucket's bags", "err", err)
				s.recon.retryAllLater()
			}
			for _, b := range more {
				workOf(work, b).merge(&bagWork{whole: true})
			}
			s.queueQuarantined()
		}
		s.reconcileWork(ctx, work)
		s.m.reconciles.Inc()
	}
}

// allBags returns every bag to reconcile: those assigned to the bucket,
// those held and those the state remembers. Bags no longer assigned are
// among them, so they are cleaned up.
func (s *Server) allBags(ctx context.Context) ([]chain.BagID, error) {
	seen := map[chain.BagID]bool{}
	for _, b := range s.assignedList() {
		seen[b] = true
	}
	// An unreadable store index leaves out the bags only it names; the
	// others are reconciled all the same, and the error brings a retry.
	held, heldErr := s.holdings.bagList()
	if heldErr != nil {
		heldErr = fmt.Errorf("provider: list the bags the store holds: %w", heldErr)
	}
	for _, b := range held {
		seen[chain.BagID(b)] = true
	}
	for _, b := range s.state.bags() {
		seen[b] = true
	}
	bkt, err := s.c.StorageBucket(ctx, s.id.Bucket)
	if err == nil {
		for _, b := range bkt.Bags {
			seen[b] = true
		}
	} else if errors.Is(err, chain.ErrNotFound) {
		err = errNoBucket
	}
	out := make([]chain.BagID, 0, len(seen))
	for b := range seen {
		out = append(out, b)
	}
	return out, errors.Join(err, heldErr)
}

// reconcileBag compares the chain's state of bag with the store and queues
// what differs.
//
// The store is read before the chain: an object is bound only after it is
// registered on chain, so every object in the local list is in any later
// list of the chain unless the chain deleted it. Read the other way round,
// an object registered and bound between the two reads would look deleted.
// Even then, an object missing from the list is only a hint: it is removed
// on evidence and after a grace (reconcileAbsent).
func (s *Server) reconcileBag(ctx context.Context, bag chain.BagID) error {
	localIDs, err := s.bs.Objects(string(bag))
	if err != nil {
		return err
	}
	if len(localIDs) > 0 {
		s.state.addBag(bag)
	}
	b, err := s.c.Bag(ctx, bag)
	exists := err == nil
	if err != nil && !errors.Is(err, chain.ErrNotFound) {
		return err
	}
	var onChain map[uint64]chain.DataObject
	if exists {
		objs, err := s.c.Objects(ctx, bag)
		if err != nil {
			return err
		}
		onChain = make(map[uint64]chain.DataObject, len(objs))
		for _, o := range objs {
			onChain[uint64(o.ID)] = o
		}
	}
	local := make(map[uint64]bool, len(localIDs))
	for _, o := range localIDs {
		local[o] = true
	}

	// Objects the chain deleted go wherever the bag is, on evidence and
	// after a grace; one the chain lists again is no longer deleted.
	for o := range local {
		if _, ok := onChain[o]; !ok {
			s.reconcileAbsent(ctx, bag, o)
		} else if _, ok := s.tombs.get(o); ok {
			s.dropTombstone(o, "the chain lists the object again")
		}
	}

	if exists && b.HasStorageBucket(s.id.Bucket) {
		if s.setAssigned(bag, true) {
			s.log.Info("bag assigned to this bucket", "bag", bag, "objects", len(onChain))
			s.announce.mark(bag)
		}
		s.state.addBag(bag)
		for o := range local {
			s.setCleanupWait(o, -1) // the bag may have come back
		}
		for id, o := range onChain {
			switch {
			case local[id] && !o.Accepted:
				s.acceptor.add(bag, o.ID)
			case !local[id]:
				s.syncer.add(syncJob{bag: bag, object: o})
			}
		}
		return nil
	}

	if s.setAssigned(bag, false) {
		s.log.Info("bag no longer assigned to this bucket", "bag", bag, "held", len(local))
	}
	s.syncer.dropBag(bag)
	var moved []uint64
	for o := range local {
		if _, ok := onChain[o]; ok {
			moved = append(moved, o)
		}
	}
	if len(moved) > 0 {
		slices.Sort(moved)
		s.cleanupMoved(ctx, b, moved)
	}
	if !s.holdings.hasBag(string(bag)) { // no objects left (an unreadable index keeps the bag)
		s.state.removeBag(bag)
	}
	return nil
}
