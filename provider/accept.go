package provider

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// Accepting tells the chain that the node holds a pending object: every
// chunk stored and the root verified. Objects are collected for a short
// window (or until a batch is full) and accepted with one
// accept_pending_data_objects per bag, signed with the transactor key.
// Accepting is idempotent on chain — accepted objects are skipped — so a
// duplicate from a restart, a sync of a pending object or two providers
// racing costs a transaction and nothing else. A failed batch is not
// retried here: the next reconcile finds the object still pending and
// queues it again.

// submitTimeout bounds one transaction the node submits. A transaction
// normally commits within a block or two; one that a node dropped from its
// mempool (a nonce taken by a transaction of the same key from a previous
// run, say) is never seen committed by a remote transport, so the wait must
// end and the work be retried with a fresh nonce.
const submitTimeout = 20 * time.Second

// acceptor collects objects to accept, by bag.
type acceptor struct {
	mu       sync.Mutex
	pending  map[chain.BagID]map[chain.ObjectID]struct{}
	n        int
	inflight map[chain.ObjectID]bool
	wake     chan struct{}
}

func newAcceptor() *acceptor {
	return &acceptor{
		pending:  map[chain.BagID]map[chain.ObjectID]struct{}{},
		inflight: map[chain.ObjectID]bool{},
		wake:     make(chan struct{}, 1),
	}
}

// add queues an object; one already queued or being submitted is skipped.
func (a *acceptor) add(bag chain.BagID, obj chain.ObjectID) {
	a.mu.Lock()
	if a.inflight[obj] {
		a.mu.Unlock()
		return
	}
	m := a.pending[bag]
	if m == nil {
		m = map[chain.ObjectID]struct{}{}
		a.pending[bag] = m
	}
	if _, ok := m[obj]; !ok {
		m[obj] = struct{}{}
		a.n++
	}
	a.mu.Unlock()
	a.signal()
}

func (a *acceptor) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acceptor) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// acceptBatch is one transaction's worth of objects of one bag.
type acceptBatch struct {
	bag     chain.BagID
	objects []chain.ObjectID
}

// take removes up to limit queued objects, grouped by bag, and marks them
// in flight.
func (a *acceptor) take(limit int) []acceptBatch {
	a.mu.Lock()
	defer a.mu.Unlock()
	bags := make([]chain.BagID, 0, len(a.pending))
	for b := range a.pending {
		bags = append(bags, b)
	}
	slices.Sort(bags)
	var out []acceptBatch
	taken := 0
	for _, b := range bags {
		if taken >= limit {
			break
		}
		m := a.pending[b]
		ids := make([]chain.ObjectID, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		ids = ids[:min(len(ids), limit-taken)]
		for _, id := range ids {
			delete(m, id)
			a.inflight[id] = true
		}
		if len(m) == 0 {
			delete(a.pending, b)
		}
		taken += len(ids)
		a.n -= len(ids)
		out = append(out, acceptBatch{bag: b, objects: ids})
	}
	return out
}

func (a *acceptor) finish(ids []chain.ObjectID) {
	a.mu.Lock()
	for _, id := range ids {
		delete(a.inflight, id)
	}
	a.mu.Unlock()
}

// acceptLoop submits the queued objects: it waits for the first, collects
// more for the accept window or until a batch is full, then submits.
func (s *Server) acceptLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.acceptor.wake:
		}
		if s.acceptor.count() == 0 {
			continue
		}
		if s.cfg.acceptWindow > 0 && s.acceptor.count() < s.cfg.acceptBatch {
			window := time.NewTimer(s.cfg.acceptWindow)
		collect:
			for s.acceptor.count() < s.cfg.acceptBatch {
				select {
				case <-ctx.Done():
					window.Stop()
					return
				case <-s.acceptor.wake:
				case <-window.C:
					break collect
				}
			}
			window.Stop()
		}
		for _, b := range s.acceptor.take(s.cfg.acceptBatch) {
			s.submitAccept(ctx, b.bag, b.objects)
			s.acceptor.finish(b.objects)
		}
		if s.acceptor.count() > 0 {
			s.acceptor.signal()
		}
	}
}

// submitAccept accepts objects of one bag on chain. When the batch fails
// because one object is gone (deleted meanwhile), the others are accepted
// one by one, so a single deletion does not hold up the rest.
func (s *Server) submitAccept(ctx context.Context, bag chain.BagID, objs []chain.ObjectID) {
	msg := chain.MsgAcceptPendingDataObjects{Worker: s.id.Worker, Bucket: s.id.Bucket, Bag: bag, Objects: objs}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	res, err := s.c.Submit(sctx, s.id.Transactor, msg)
	cancel()
	switch {
	case err == nil:
		s.m.acceptTxs.WithLabelValues("ok").Inc()
		accepted, _ := chain.FindEvent[chain.ObjectsAccepted](res.Result.Events)
		s.m.acceptedObjects.Add(float64(len(accepted.Objects)))
		s.log.Info("accepted objects on chain", "bag", bag, "objects", objs, "newly", len(accepted.Objects),
			"height", res.Height, "took", time.Since(start).Round(time.Millisecond))
	case ctx.Err() != nil:
	case errors.Is(err, chain.ErrObjectNotFound) && len(objs) > 1:
		s.m.acceptTxs.WithLabelValues("split").Inc()
		for _, o := range objs {
			s.submitAccept(ctx, bag, []chain.ObjectID{o})
		}
	case errors.Is(err, chain.ErrObjectNotFound), errors.Is(err, chain.ErrBagNotInBucket), errors.Is(err, chain.ErrBagNotFound):
		// Deleted or moved meanwhile: nothing to accept.
		s.m.acceptTxs.WithLabelValues("gone").Inc()
		s.log.Debug("accept: objects gone", "bag", bag, "objects", objs, "err", err)
		s.recon.markObjects(bag, objs, "")
	default:
		s.m.acceptTxs.WithLabelValues("failed").Inc()
		s.chainReadFailed(err)
		s.log.Warn("accept objects on chain failed; retrying later", "bag", bag, "objects", objs, "err", err)
		s.recon.retryLater(bag, objs...)
	}
}
