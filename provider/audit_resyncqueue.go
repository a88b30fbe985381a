package provider

import (
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// The re-check queue: the objects failed results asked this node to
// re-check, taken in turns. Each turn re-checks at most the node's
// ResyncSlice of one object's bytes, from where its last turn stopped, and
// an object not done goes to the back of the queue, so one very large
// failing object cannot hold the re-checks of all the others (whole, a
// 30 GB object takes about an hour at the node's rate). An object's first turn re-checks the chunks the failed
// audit sampled before anything else, so the block that failed it is most
// likely found at once. The turns: audit_resyncturn.go; their pauses on an
// auditor's spent budget: audit_resyncpause.go.

// maxQueuedResyncs bounds the objects queued for re-checks, the one in its
// turn included (when it is full a new FAIL drops the newest waiting that
// has not started, or is refused if every waiting one has started), and
// maxResyncsPerAuditor one auditor's share of them: an operator of one of
// the bag's buckets failing every object of the bag fills its share, not
// the queue, and the other auditors' FAILs are still acted on.
const (
	maxQueuedResyncs     = 64
	maxResyncsPerAuditor = 8
)

// resyncRequest is one object a failed result asks this node to re-check,
// the auditor whose result it was, and how far its re-check got.
type resyncRequest struct {
	bag     chain.BagID
	object  uint64
	auditor string
	// sampled are the chunk indexes the failed audit asked for (at most
	// audit.MaxSamples), re-checked first; checked their CIDs, which the
	// pass over the whole object then skips.
	sampled []uint64
	checked []cid.Cid
	// started is set by the object's first turn; next is the index, in
	// the object's block list (blockstore.Manifest.Blocks), of the first
	// block its next turn re-checks; unreadable counts the blocks its
	// turns found missing or corrupt.
	started    bool
	next       int
	unreadable int
}

// sampledChunks are the distinct chunk indexes r's challenge asked for,
// the first audit.MaxSamples of them.
func sampledChunks(r *pb.AuditResult) []uint64 {
	var out []uint64
	for _, smp := range r.Samples {
		if len(out) == audit.MaxSamples {
			break
		}
		if !slices.Contains(out, smp.GetIndex()) {
			out = append(out, smp.GetIndex())
		}
	}
	return out
}

// resyncObj is an object queued for a re-check (resyncQueue.objects).
type resyncObj struct {
	bag    chain.BagID
	object uint64
}

// resyncQueue is what waits for its turn, the longest waiting first, and
// what is in its turn, counted by auditor and by object; guarded by
// auditor.mu.
type resyncQueue struct {
	waiting   []resyncRequest
	byAuditor map[string]int
	objects   map[resyncObj]bool
}

// queueResync hands a failed result's object to resyncLoop unless it is
// queued or being re-checked already, its auditor's share of the queue is
// full or its auditor's re-check byte budget is spent (then the cooldown
// is not started, so the auditor's next failure is acted on), or the
// object's cooldown holds. A full queue drops the newest waiting request
// whose re-check has not started, or, every waiting one started, refuses
// this one (makeRoomLocked): a re-check part-way through a large object
// keeps its progress: dropped, it would start again from its first block
// at its next FAIL and, with the queue kept full, never get far.
// heardLoop never waits for a re-check, which reads the whole object: a
// subscriber that falls behind loses messages, a real FAIL among them.
func (s *Server) queueResync(r *pb.AuditResult) {
	a := s.audits
	req := resyncRequest{bag: chain.BagID(r.Bag), object: r.Object, auditor: string(r.Auditor), sampled: sampledChunks(r)}
	obj := resyncObj{bag: req.bag, object: req.object}
	a.mu.Lock()
	defer a.mu.Unlock()
	q := &a.queue
	if q.objects[obj] || q.byAuditor[req.auditor] >= maxResyncsPerAuditor || !a.resyncBudget.allow(req.auditor) {
		s.am.resyncsSkipped.Inc()
		return
	}
	if !a.cooledLocked(r) {
		return
	}
	if len(q.objects) >= maxQueuedResyncs && !s.makeRoomLocked() {
		a.resync.Remove(resyncKey{bag: r.Bag, object: r.Object}) // not re-checked: no cooldown
		s.am.resyncsDropped.Inc()
		return
	}
	q.objects[obj] = true
	q.byAuditor[req.auditor]++
	q.waiting = append(q.waiting, req)
	select {
	case a.wake <- struct{}{}:
	default: // resyncLoop is woken already
	}
}

// makeRoomLocked drops the newest waiting request whose re-check has not
// started (counted, its cooldown ended, so its auditor's next round's FAIL
// is acted on), and reports false if every waiting one has started. The
// newest: those queued before it are nearer their first turn. a.mu is held.
func (s *Server) makeRoomLocked() bool {
	a := s.audits
	q := &a.queue
	for i := len(q.waiting) - 1; i >= 0; i-- {
		old := q.waiting[i]
		if old.started {
			continue
		}
		q.waiting = slices.Delete(q.waiting, i, i+1)
		a.unqueueLocked(old)
		a.resync.Remove(resyncKey{bag: string(old.bag), object: old.object}) // not re-checked: no cooldown
		s.am.resyncsDropped.Inc()
		return true
	}
	return false
}

// nextResync takes the request whose turn it is off the queue, and says
// how many were waiting, it included; it keeps its place in the counts
// until resyncDone (or requeueResync puts it back).
func (a *auditor) nextResync() (resyncRequest, int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.queue.waiting)
	if n == 0 {
		return resyncRequest{}, 0, false
	}
	req := a.queue.waiting[0]
	a.queue.waiting = slices.Delete(a.queue.waiting, 0, 1)
	return req, n, true
}

// requeueResync puts req, whose re-check is not done, at the back of the
// queue for its next turn. It was counted all along, so the queue stays
// within its bound.
func (a *auditor) requeueResync(req resyncRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue.waiting = append(a.queue.waiting, req)
}

// resyncDone ends req's place in the queue once it was re-checked.
func (a *auditor) resyncDone(req resyncRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unqueueLocked(req)
}

// unqueueLocked forgets req in the queue's counts; a.mu is held.
func (a *auditor) unqueueLocked(req resyncRequest) {
	delete(a.queue.objects, resyncObj{bag: req.bag, object: req.object})
	if a.queue.byAuditor[req.auditor]--; a.queue.byAuditor[req.auditor] <= 0 {
		delete(a.queue.byAuditor, req.auditor)
	}
}
