package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// Repair: blocks found corrupt (quarantined by the store) are fetched again
// from the bag's other providers.

// repairQueue holds corrupt blocks to fetch again. Blocks no peer could
// serve wait for the next full reconcile.
type repairQueue struct {
	mu      sync.Mutex
	pending map[cid.Cid]struct{}
	waiting map[cid.Cid]struct{}
	wake    chan struct{}
}

func newRepairQueue() *repairQueue {
	return &repairQueue{pending: map[cid.Cid]struct{}{}, waiting: map[cid.Cid]struct{}{}, wake: make(chan struct{}, 1)}
}

func (q *repairQueue) add(c cid.Cid) {
	q.mu.Lock()
	q.pending[c] = struct{}{}
	delete(q.waiting, c)
	q.mu.Unlock()
	q.signal()
}

func (q *repairQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *repairQueue) take() []cid.Cid {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]cid.Cid, 0, len(q.pending))
	for c := range q.pending {
		out = append(out, c)
	}
	clear(q.pending)
	slices.SortFunc(out, func(a, b cid.Cid) int { return a.ByteLen() - b.ByteLen() })
	return out
}

func (q *repairQueue) fail(c cid.Cid) {
	q.mu.Lock()
	q.waiting[c] = struct{}{}
	q.mu.Unlock()
}

// retry moves the blocks that found no peer back to pending.
func (q *repairQueue) retry() {
	q.mu.Lock()
	n := len(q.waiting)
	for c := range q.waiting {
		q.pending[c] = struct{}{}
	}
	clear(q.waiting)
	q.mu.Unlock()
	if n > 0 {
		q.signal()
	}
}

func (q *repairQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + len(q.waiting)
}

// queueQuarantined queues every block the store has quarantined, including
// those found corrupt before a restart or by reads outside the fetch
// handler.
func (s *Server) queueQuarantined() {
	q, err := s.bs.Quarantined()
	if err != nil {
		s.log.Warn("list quarantined blocks", "err", err)
		return
	}
	for _, c := range q {
		s.repairs.add(c)
	}
}

// repairLoop fetches corrupt blocks again from peers.
func (s *Server) repairLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.repairs.wake:
		}
		for _, c := range s.repairs.take() {
			if ctx.Err() != nil {
				return
			}
			err := s.repairBlock(ctx, c)
			switch {
			case err == nil:
				s.m.repairs.WithLabelValues("ok").Inc()
			case ctx.Err() != nil:
				return
			case errors.Is(err, errNotHeld):
				s.m.repairs.WithLabelValues("not_held").Inc()
			default:
				s.m.repairs.WithLabelValues("failed").Inc()
				s.log.Warn("repair block failed; retrying at the next reconcile", "cid", c, "err", err)
				s.repairs.fail(c)
			}
		}
	}
}

// errNotHeld means a corrupt block belongs to no object the node holds, so
// there is nothing to repair: the block goes with its quarantine.
var errNotHeld = errors.New("provider: block belongs to no held object")

// repairBlock fetches block c from a provider of a bag whose object holds
// it and stores it again.
func (s *Server) repairBlock(ctx context.Context, c cid.Cid) error {
	if ok, err := s.bs.Has(c); err == nil && ok {
		return nil // repaired already, or a duplicate report
	}
	objs, err := s.holdings.objectsOf(c)
	if err != nil {
		return fmt.Errorf("find the objects of block %s: %w", c, err)
	}
	if len(objs) == 0 {
		return errNotHeld
	}
	bags := map[chain.BagID]bool{}
	for _, b := range objs {
		bags[chain.BagID(b)] = true
	}
	var errs []error
	for bag := range bags {
		peers := s.peers.all(ctx, bag)
		if len(peers) == 0 {
			errs = append(errs, fmt.Errorf("bag %s: %w", bag, errNoSource))
			continue
		}
		f := &blockFetcher{s: s, sources: peers}
		data, err := f.get(ctx, c, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.full.note("repair", s.bs.Put(c, data)); err != nil {
			return fmt.Errorf("store repaired block %s: %w", c, err)
		}
		s.log.Info("repaired corrupt block from a peer", "cid", c, "bag", bag, "bytes", len(data))
		return nil
	}
	return errors.Join(errs...)
}
