package provider

import (
	"context"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// resyncTurnBlocks bounds the blocks one turn looks up, whatever they
// read: blocks missing from the store read nothing, so a turn over an
// object the node lost would otherwise look up all of it at once.
const resyncTurnBlocks = 4096

// keptBlocks is the block list of the object whose turn was last, kept for
// its next turn: an object alone in the queue takes turn after turn, and
// decoding its manifest for each (about 4 MB and a 90k-entry set for an
// object of 90k chunks, per 16 MiB read) would be paid thousands of times.
// Only one is kept: one for each queued object would be up to 64 lists of
// 90k CIDs, about 370 MB.
type keptBlocks struct {
	obj    resyncObj
	blocks []cid.Cid
}

// resyncLoop re-checks the objects queueResync queues until ctx ends, in
// turns (resyncTurn), each paced by the node's re-check budget and charged
// to its auditor's, which is checked before every turn. An object whose
// auditor's budget is spent before its first turn is skipped, its cooldown
// ended, so the auditor's next failure of it is acted on; one whose re-check
// has started is put back without reading, paused until the budget is
// paid back, and when every waiting object is paused so the loop waits for
// the first budget to refill (waitRefill).
func (s *Server) resyncLoop(ctx context.Context) {
	a := s.audits
	var kept keptBlocks
	paused := 0 // objects put back in a row for their auditors' budgets
	for ctx.Err() == nil {
		req, waiting, ok := a.nextResync()
		allowed := ok && a.resyncBudget.allow(req.auditor)
		switch {
		case !ok:
			a.waitQueued(ctx)
		case !allowed && !req.started:
			s.am.resyncsSkipped.Inc()
			a.mu.Lock()
			a.resync.Remove(resyncKey{bag: string(req.bag), object: req.object})
			a.mu.Unlock()
			a.resyncDone(req)
		case !allowed:
			a.requeueResync(req)
			if paused++; paused >= waiting {
				a.waitRefill(ctx)
				paused = 0
			}
		case s.resyncTurn(ctx, &req, &kept):
			paused = 0
			if kept.obj == (resyncObj{bag: req.bag, object: req.object}) {
				kept = keptBlocks{}
			}
			a.resyncDone(req)
		default:
			paused = 0
			a.requeueResync(req)
		}
	}
}

// resyncTurn re-checks the next blocks of an object this node was found
// failing, from where its last turn stopped (the first turn starts with
// the chunks the audit sampled, resyncSampled), until it has read the
// node's ResyncSlice (the block that crosses it included) or looked up
// resyncTurnBlocks, and reports whether the re-check is over. Each block is
// read and verified (a corrupt one is quarantined) and one that fails —
// missing or corrupt — is fetched again from peers. What it reads is
// charged to req's auditor, and paced by the node's budget.
func (s *Server) resyncTurn(ctx context.Context, req *resyncRequest, kept *keptBlocks) bool {
	blocks, m, ok := s.resyncBlocks(req, kept)
	if !ok {
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
	for looked := 0; req.next < len(blocks) && read < budget.slice && looked < resyncTurnBlocks; req.next++ {
		if ctx.Err() != nil {
			return false
		}
		if slices.Contains(req.checked, blocks[req.next]) {
			continue
		}
		looked++
		n, ok := s.resyncBlock(ctx, req, blocks[req.next])
		if !ok {
			return false
		}
		read += n
	}
	if req.next < len(blocks) {
		return false
	}
	// Every block was read, so every one missing or corrupt was found and
	// counted once.
	s.am.resyncs.Inc()
	s.log.Info("re-checked the object", "bag", req.bag, "object", req.object, "blocks", len(blocks), "unreadable", req.unreadable)
	return true
}

// resyncBlocks returns the block list of req's object (blockstore.Manifest.
// Blocks), kept from its last turn if it was the last object's, and its
// manifest if it was decoded (always for a first turn, which needs its
// chunks); false if the node does not hold the object in req's bag.
func (s *Server) resyncBlocks(req *resyncRequest, kept *keptBlocks) ([]cid.Cid, blockstore.Manifest, bool) {
	obj := resyncObj{bag: req.bag, object: req.object}
	if req.started && kept.obj == obj && kept.blocks != nil {
		// Its bag was checked on its first turn; object IDs are not reused.
		held, err := s.bs.HasObject(req.object)
		return kept.blocks, blockstore.Manifest{}, err == nil && held
	}
	m, ok, err := s.bs.Manifest(req.object)
	if err != nil || !ok || m.Bag != string(req.bag) {
		return nil, blockstore.Manifest{}, false
	}
	*kept = keptBlocks{obj: obj, blocks: m.Blocks()}
	return kept.blocks, m, true
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
