package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
)

// Cleanup removes what the chain no longer asks the node to keep.
//
// An object deleted on chain is removed at once: nobody may need it. An
// object of a bag moved away from the node's bucket is still the bag's
// data; it is removed only once enough providers that the chain names for
// the bag now (the operators of its current storage buckets, identified by
// the peer IDs they published) answer a HAVE for every one of its blocks.
// Peers found only on the DHT never count: two nodes that both lost the
// bag could otherwise confirm each other and drop the last copies.
//
// Either way an object that is being served is kept: every read the fetch
// policy authorises stamps the object, and removal waits until no read has
// started for the serve grace. The next reconcile tries again.

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
	if last := s.holdings.lastRead(obj); !last.IsZero() && time.Since(last) < s.cfg.serveGrace {
		s.m.cleanupDeferred.Inc()
		s.log.Debug("object is being served; removing it later", "bag", bag, "object", obj, "reason", reason, "lastRead", last)
		return false
	}
	// Stop authorising reads first, then delete. Chunks pushed for the
	// object and not released by a BIND (this node synced the object
	// instead, or was pushed to after it) go with it: the upload session
	// of a gone object holds nothing anyone will bind.
	s.holdings.remove(obj)
	if err := s.bs.EndSession(store.ObjectSessionID(obj)); err != nil {
		s.log.Debug("end the removed object's upload session", "bag", bag, "object", obj, "err", err)
	}
	if err := s.bs.DeleteObject(obj); err != nil {
		s.log.Warn("remove object", "bag", bag, "object", obj, "err", err)
		if m, ok, merr := s.bs.Manifest(obj); merr == nil && ok {
			s.holdings.add(m)
		}
		return false
	}
	s.setCleanupWait(obj, -1)
	s.m.cleanupObjects.WithLabelValues(reason).Inc()
	s.log.Info("removed object", "bag", bag, "object", obj, "reason", reason)
	return true
}

// cleanupMoved removes the objects of a bag that moved away from the
// node's bucket once enough of the bag's current providers confirm they
// hold every block.
func (s *Server) cleanupMoved(ctx context.Context, b chain.Bag, objs []uint64) {
	need := s.cfg.cleanupConfirmations
	buckets, err := s.peers.chainPeers(ctx, b.ID)
	if err != nil {
		s.log.Warn("cleanup: find the bag's providers", "bag", b.ID, "err", err)
		return
	}
	// One operator may run several of the bag's buckets under one peer ID:
	// it holds one copy, so it is asked and counted once.
	peers := distinctPeers(buckets, s.h.ID())
	// A peer that cannot be reached is not asked again in this pass, so an
	// unreachable provider costs one timeout, not one per object.
	unreachable := map[peer.ID]bool{}
	for _, obj := range objs {
		if ctx.Err() != nil {
			return
		}
		blocks, ok := s.holdings.blocksOf(obj)
		if !ok {
			continue
		}
		confirmed := 0
		for _, p := range peers {
			if confirmed >= need {
				break
			}
			if unreachable[p] {
				continue
			}
			all, err := s.holdsAll(ctx, p, blocks)
			if err != nil {
				unreachable[p] = true
				s.log.Debug("cleanup: provider unreachable", "bag", b.ID, "peer", p, "err", err)
				continue
			}
			if all {
				confirmed++
			}
		}
		if confirmed < need {
			if s.setCleanupWait(obj, confirmed) {
				s.log.Info("bag moved away; keeping object until enough providers hold it",
					"bag", b.ID, "object", obj, "confirmed", confirmed, "need", need, "providers", len(peers))
			}
			continue
		}
		s.removeObject(b.ID, obj, reasonMoved)
	}
}

// distinctPeers returns the peer IDs of ps, each once, in order, leaving
// out self: every entry is one copy of the data that can confirm a cleanup.
func distinctPeers(ps []chainPeer, self peer.ID) []peer.ID {
	seen := make(map[peer.ID]bool, len(ps))
	out := make([]peer.ID, 0, len(ps))
	for _, p := range ps {
		if p.ID == "" || p.ID == self || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		out = append(out, p.ID)
	}
	return out
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
