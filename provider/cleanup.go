package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Cleanup removes what the chain no longer asks the node to keep.
//
// An object deleted on chain is removed on evidence and after a grace
// (tombstones.go). An
// object of a bag moved away from the node's bucket is still the bag's
// data; it is removed only once enough distinct operators of the bag's
// current storage buckets on chain (reached at the peer IDs they published)
// prove they hold it: each answers a HAVE for every block, then an audit
// challenge naming the object, with random chunks and their proof paths
// verified against the root — answered only by a node that recorded the
// object itself, not one holding the same bytes for another. One operator
// counts once however many buckets or peer IDs it runs, and a claim without
// the bytes counts for nothing. Peers found only on the DHT never count:
// two nodes that both lost the bag could otherwise confirm each other and
// drop the last copies.
//
// Either way an object that is being served is kept: every GET answered
// with a block's bytes stamps the objects the fetch policy found the block
// in when it authorised the GET (as the reply is built, before it is
// written), and removal waits until no read has been stamped for the serve
// grace. The next reconcile tries again.

// Reasons an object is removed, the label of the cleanup metric.
const (
	reasonDeleted = "deleted"
	reasonMoved   = "moved"
)

// removeObject deletes a held object unless it is being synced or served.
// It reports whether the object is gone.
func (s *Server) removeObject(bag chain.BagID, obj uint64, reason string) bool {
	if s.syncer.busy(obj) {
		return false // the sync's end marks the bag for another look
	}
	s.syncer.dropObject(obj)
	// Stop authorising reads first (unless one came within the serve
	// grace: checked in the same step), then delete. Chunks pushed for the
	// object and not released by a BIND (this node synced the object
	// instead, or was pushed to after it) go with it: the upload session
	// of a gone object holds nothing anyone will bind.
	if last, ok := s.holdings.withdrawUnlessRead(obj, time.Now()); !ok {
		s.m.cleanupDeferred.Inc()
		s.log.Debug("object is being served; removing it later", "bag", bag, "object", obj, "reason", reason, "lastRead", last)
		s.recon.retryLater(bag)
		return false
	}
	if err := s.bs.EndSession(store.ObjectSessionID(obj)); err != nil {
		s.log.Debug("end the removed object's upload session", "bag", bag, "object", obj, "err", err)
	}
	if err := s.bs.DeleteObject(obj); err != nil {
		s.log.Warn("remove object", "bag", bag, "object", obj, "err", err)
		// Served again while its manifest is there. The store may have
		// failed after deleting it (cleaning up its blocks): restore then
		// keeps a GET looked up before from stamping it read.
		s.holdings.restore(obj, false)
		return false
	}
	s.holdings.restore(obj, true)
	s.setCleanupWait(obj, -1)
	s.dropTombstone(obj, "") // whichever path removed it, nothing waits any more
	s.m.cleanupObjects.WithLabelValues(reason).Inc()
	s.log.Info("removed object", "bag", bag, "object", obj, "reason", reason)
	return true
}

// cleanupMoved removes the objects of a bag that moved away from the
// node's bucket once enough distinct operators of the bag's current buckets
// prove they hold every block (confirmPossession).
func (s *Server) cleanupMoved(ctx context.Context, b chain.Bag, objs []uint64) {
	need := s.cfg.cleanupConfirmations
	// The buckets are those of b, the bag as this reconcile read it after
	// the move, never a cached list: one read before the move would name
	// the bag's old providers, which still hold the object (they moved
	// away too) and would confirm its removal while its new ones lack it.
	buckets, err := s.peers.operatorsOf(ctx, b)
	if err != nil {
		s.log.Warn("cleanup: find the bag's providers", "bag", b.ID, "err", err)
		s.recon.retryLater(b.ID)
		return
	}
	peers := confirmingPeers(buckets, s.h.ID())
	// A peer that cannot be reached is not asked again in this pass, so an
	// unreachable provider costs one timeout, not one per object.
	unreachable := map[peer.ID]bool{}
	for _, obj := range objs {
		if ctx.Err() != nil {
			return
		}
		if len(unreachable) > 0 && answering(peers, unreachable) < need {
			// The rest would be asked of too few operators: a peer
			// refused (its audit budget is spent) or is down. The next
			// pass goes on from what is left (a bag with too few
			// operators from the start is still told object by object).
			s.log.Debug("cleanup: too few operators answer in this pass; trying again later", "bag", b.ID, "need", need)
			s.recon.retryLater(b.ID)
			return
		}
		blocks, ok := s.holdings.blocksOf(obj)
		if !ok {
			continue
		}
		m, ok, err := s.bs.Manifest(obj)
		if err != nil || !ok {
			continue
		}
		// Each operator is one copy: it confirms once, whichever of its
		// buckets or peer IDs answers.
		confirmedBy := map[chain.Account]bool{}
		for _, p := range peers {
			if len(confirmedBy) >= need {
				break
			}
			if unreachable[p.ID] || confirmedBy[p.Operator] {
				continue
			}
			held, err := s.confirmPossession(ctx, p.ID, m, blocks)
			if err != nil {
				unreachable[p.ID] = true
				s.log.Debug("cleanup: provider unreachable", "bag", b.ID, "peer", p.ID, "err", err)
				continue
			}
			if held {
				confirmedBy[p.Operator] = true
			} else {
				s.log.Debug("cleanup: provider did not prove it holds the object", "bag", b.ID, "object", obj, "peer", p.ID, "operator", p.Operator)
			}
		}
		if confirmed := len(confirmedBy); confirmed < need {
			if s.setCleanupWait(obj, confirmed) {
				s.log.Info("bag moved away; keeping object until enough operators prove they hold it",
					"bag", b.ID, "object", obj, "confirmed", confirmed, "need", need, "providers", len(peers))
			}
			s.recon.retryLater(b.ID)
			continue
		}
		s.removeObject(b.ID, obj, reasonMoved)
	}
}

// answering counts the operators of ps with a peer not in unreachable.
func answering(ps []chainPeer, unreachable map[peer.ID]bool) int {
	ops := map[chain.Account]bool{}
	for _, p := range ps {
		if !unreachable[p.ID] {
			ops[p.Operator] = true
		}
	}
	return len(ops)
}

// confirmingPeers returns the chain's providers of a bag that may confirm a
// cleanup: each peer ID once, in order, leaving out self. Operators that
// run several of them are counted once by the caller.
func confirmingPeers(ps []chainPeer, self peer.ID) []chainPeer {
	seen := make(map[peer.ID]bool, len(ps))
	out := make([]chainPeer, 0, len(ps))
	for _, p := range ps {
		if p.ID == "" || p.ID == self || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		out = append(out, p)
	}
	return out
}

// possessionSamples is how many chunks a peer must prove, picked at
// random each time, to show it holds an object: a HAVE is only a claim.
const possessionSamples = 5

// confirmPossession asks p whether it holds object m, the proof being the
// object's, not its blocks': p must answer a HAVE for every one of blocks
// (m's, as holdings lists them), then an audit challenge naming the object
// (protocol/audit) for possessionSamples random chunks, each sent with its
// proof path from the root and verified against it. The audit handler answers only from a manifest it recorded
// for that object of that bag, so blocks p holds for another object with
// the same bytes — which a HAVE or a GET would answer for — prove nothing:
// p could drop them with that object, and this node's copy would have been
// the last. It reports false when p denies or fails the proof; an error
// means p could not be asked (unreachable, busy, too slow) and is not
// asked again in this pass.
func (s *Server) confirmPossession(ctx context.Context, p peer.ID, m blockstore.Manifest, blocks []cid.Cid) (bool, error) {
	all, err := s.holdsAll(ctx, p, blocks)
	if err != nil || !all {
		return false, err
	}
	if s.audits.client == nil {
		return false, errors.New("provider: not started")
	}
	samples, _ := pickSamples(m.Chunks, possessionSamples)
	out, err := s.audits.client.Audit(ctx, p, audit.Target{Bag: m.Bag, Object: m.Object, Root: m.Root}, samples)
	switch {
	case err != nil:
		return false, err
	case out.Pass:
		return true, nil
	case errors.Is(out.Err, audit.ErrUnreachable), errors.Is(out.Err, audit.ErrRefused), errors.Is(out.Err, audit.ErrTimeout):
		return false, out.Err
	}
	return false, nil
}

// holdsAll asks p, in HAVE rounds of at most fetch.MaxHaveCIDs, whether it holds
// every block. An error means p could not be asked.
func (s *Server) holdsAll(ctx context.Context, p peer.ID, blocks []cid.Cid) (bool, error) {
	for start := 0; start < len(blocks); start += fetch.MaxHaveCIDs {
		batch := blocks[start:min(start+fetch.MaxHaveCIDs, len(blocks))]
		hctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
		have, err := s.fetch.Have(hctx, p, batch)
		cancel()
		if err != nil {
			return false, err
		}
		if len(have) != len(batch) {
			return false, fmt.Errorf("peer %s answered %d flags for %d CIDs", p, len(have), len(batch))
		}
		for _, h := range have {
			if !h {
				return false, nil
			}
		}
	}
	return true, nil
}

// setCleanupWait records how many confirmations an object waiting for
// cleanup has (n < 0: it waits no more) and reports whether that changed.
func (s *Server) setCleanupWait(obj uint64, n int) bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	if n < 0 {
		_, ok := s.cleanupWait[obj]
		delete(s.cleanupWait, obj)
		return ok
	}
	if s.cleanupWait == nil {
		s.cleanupWait = map[uint64]int{}
	}
	old, ok := s.cleanupWait[obj]
	s.cleanupWait[obj] = n
	return !ok || old != n
}

// cleanupWaiting returns how many objects wait for confirmations.
func (s *Server) cleanupWaiting() int {
	s.amu.Lock()
	defer s.amu.Unlock()
	return len(s.cleanupWait)
}
