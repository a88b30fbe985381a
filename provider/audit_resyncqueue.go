package provider

import (
	"context"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// The re-check queue: the objects failed results asked this node to
// re-check, taken in turns. Each turn re-checks at most the node's
// ResyncSlice of one object's bytes, from where its last turn stopped, and
// an object not done goes to the back of the queue, so one very large
// failing object cannot hold the re-checks of all the others (session 16:
// before, one object was re-checked whole before the next, about an hour
// for 30 GB at the node's rate, while the others queued and the oldest
// were dropped). An object's first turn re-checks the chunks the failed
// audit sampled before anything else, so the block that failed it is most
// likely found at once.

// maxQueuedResyncs bounds the objects queued for re-checks, the one in its
// turn included (when it is full the oldest waiting is dropped for a new
// one), and maxResyncsPerAuditor one auditor's share of them: an operator
// of one of the bag's buckets failing every object of the bag fills its
// share, not the queue, and the other auditors' FAILs are still acted on.
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
// object's cooldown holds. A full queue drops the request that waited
// longest, whatever its re-check got through: its auditor's next round
// fails the object again if it still fails.
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
	if len(q.objects) >= maxQueuedResyncs && len(q.waiting) > 0 {
		old := q.waiting[0]
		q.waiting = slices.Delete(q.waiting, 0, 1)
		a.unqueueLocked(old)
		a.resync.Remove(resyncKey{bag: string(old.bag), object: old.object}) // not re-checked: no cooldown
		s.am.resyncsDropped.Inc()
	}
	q.objects[obj] = true
	q.byAuditor[req.auditor]++
	q.waiting = append(q.waiting, req)
	select {
	case a.wake <- struct{}{}:
	default: // resyncLoop is woken already
	}
}

// nextResync takes the request whose turn it is off the queue; it keeps
// its place in the counts until resyncDone (or requeueResync puts it back).
func (a *auditor) nextResync() (resyncRequest, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue.waiting) == 0 {
		return resyncRequest{}, false
	}
	req := a.queue.waiting[0]
	a.queue.waiting = slices.Delete(a.queue.waiting, 0, 1)
	return req, true
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

// resyncLoop re-checks the objects queueResync queues until ctx ends, in
// turns (resyncTurn), each paced by the node's re-check budget and charged
// to its auditor's. An object whose auditor's budget was spent while it
// waited for its first turn is skipped, its cooldown ended, so the
// auditor's next failure of it is acted on; once started, a re-check goes
// on to the end of the object.
func (s *Server) resyncLoop(ctx context.Context) {
	a := s.audits
	for ctx.Err() == nil {
		req, ok := a.nextResync()
		switch {
		case !ok:
			select {
			case <-ctx.Done():
			case <-a.wake:
			}
		case !req.started && !a.resyncBudget.allow(req.auditor):
			s.am.resyncsSkipped.Inc()
			a.mu.Lock()
			a.resync.Remove(resyncKey{bag: string(req.bag), object: req.object})
			a.mu.Unlock()
			a.resyncDone(req)
		case s.resyncTurn(ctx, &req):
			a.resyncDone(req)
		default:
			a.requeueResync(req)
		}
	}
}

// resyncTurn re-checks the next blocks of an object this node was found
// failing, from where its last turn stopped (the first turn starts with
// the chunks the audit sampled, resyncSampled), until it has read the
// node's ResyncSlice (the block that crosses it included), and reports
// whether the re-check is over. Each block is read and verified (a corrupt one is
// quarantined) and one that fails is fetched again from peers, as is, at
// the end, whatever else of the object is missing. What it reads is
// charged to req's auditor, and paced by the node's budget.
func (s *Server) resyncTurn(ctx context.Context, req *resyncRequest) bool {
	m, ok, err := s.bs.Manifest(req.object)
	if err != nil || !ok || m.Bag != string(req.bag) {
		// Not held (or no longer): the reconcile syncs objects the
		// bucket lacks.
		s.recon.markObjects(req.bag, []chain.ObjectID{chain.ObjectID(req.object)}, "")
		return true
	}
	var read int64
	if !req.started {
		req.started = true
		s.log.Warn("an audit found this node failing; re-checking the object", "bag", req.bag, "object", req.object)
		n, done := s.resyncSampled(ctx, req, m)
		if !done {
			return false
		}
		read = n
	}
	budget := s.audits.resyncBudget
	blocks := m.Blocks()
	for ; req.next < len(blocks) && read < budget.slice; req.next++ {
		if ctx.Err() != nil {
			return false
		}
		if slices.Contains(req.checked, blocks[req.next]) {
			continue
		}
		n, ok := s.resyncBlock(ctx, req, blocks[req.next])
		if !ok {
			return false
		}
		read += n
	}
	if req.next < len(blocks) {
		return false
	}
	missing, err := s.bs.MissingBlocks(req.object)
	if err == nil {
		for _, c := range missing {
			s.repairs.add(c)
		}
	}
	s.am.resyncs.Inc()
	s.log.Info("re-checked the object", "bag", req.bag, "object", req.object, "blocks", len(blocks),
		"unreadable", req.unreadable, "missing", len(missing))
	return true
}

// resyncSampled re-checks, first thing, the chunks of m the failed audit
// asked for: one of them most likely failed it, and is then found in the
// object's first turn however large the object is. It returns the bytes
// read, and false if ctx ended first.
func (s *Server) resyncSampled(ctx context.Context, req *resyncRequest, m blockstore.Manifest) (int64, bool) {
	var read int64
	before := req.unreadable
	for _, i := range req.sampled {
		if i >= uint64(len(m.Chunks)) || slices.Contains(req.checked, m.Chunks[i].CID) {
			continue
		}
		c := m.Chunks[i].CID
		req.checked = append(req.checked, c)
		n, ok := s.resyncBlock(ctx, req, c)
		if !ok {
			return read, false
		}
		read += n
	}
	if len(req.checked) > 0 {
		s.log.Info("re-checked the chunks the audit sampled", "bag", req.bag, "object", req.object,
			"chunks", len(req.checked), "unreadable", req.unreadable-before)
	}
	return read, true
}

// resyncBlock re-checks block c of req's object: reads and verifies it (the
// store quarantines it if corrupt), hands it to the repair if that fails,
// and charges what it read to req's auditor, waiting for the node's
// budget. It returns the bytes read, and false if ctx ended first.
func (s *Server) resyncBlock(ctx context.Context, req *resyncRequest, c cid.Cid) (int64, bool) {
	b, err := s.bs.Get(c)
	if err != nil {
		s.repairs.add(c)
		req.unreadable++
	}
	return int64(len(b)), s.audits.resyncBudget.spend(ctx, req.auditor, int64(len(b)))
}
