package provider

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// operatorReadTimeout bounds a background read of the active storage
// operators for the DHT's record priority.
const operatorReadTimeout = 30 * time.Second

// recordPriority names the peers whose DHT provider records the node's
// host keeps first (p2p.Host.SetProviderPriority): the active operators of
// storage buckets, as the chain last said (activeOperators, the set the
// audit relay reads). Peer IDs are free, so a swarm of them announcing
// random keys would otherwise crowd out the records of the peers that
// announce most, the storage providers; operating a bucket is not free.
type recordPriority struct {
	ops    *activeOperators
	lister bucketLister
	log    *slog.Logger
	wake   chan struct{} // asks loop for a read; buffered, one pending at most
}

func newRecordPriority(ops *activeOperators, lister bucketLister, log *slog.Logger) *recordPriority {
	return &recordPriority{ops: ops, lister: lister, log: log, wake: make(chan struct{}, 1)}
}

// priority reports whether p actively operates a storage bucket. The DHT
// asks it for every provider record, under its provider manager's lock,
// so it never waits for the chain: it answers from the set last read and,
// when that is stale, asks loop to read it again.
func (r *recordPriority) priority(p peer.ID) bool {
	op, read := r.ops.cached(p)
	if read {
		r.ask()
	}
	return op
}

// ask wakes loop without waiting.
func (r *recordPriority) ask() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop reads the active operators whenever priority asks, until ctx ends.
func (r *recordPriority) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		rctx, cancel := context.WithTimeout(ctx, operatorReadTimeout)
		if err := r.ops.refresh(rctx, r.lister); err != nil && ctx.Err() == nil {
			r.log.Debug("DHT record priority: read the storage operators", "err", err)
		}
		cancel()
	}
}

// startRecordPriority installs the record priority on the host, with a
// first read of the operators under way, when the chain client can list
// the storage buckets. Close removes it. It is called by Start.
func (s *Server) startRecordPriority(ctx context.Context) {
	lister, ok := s.c.(bucketLister)
	if !ok {
		return
	}
	s.priority = newRecordPriority(&s.audits.relay.operators, lister, s.log)
	s.priority.ask()
	s.goFunc(func() { s.priority.loop(ctx) })
	s.h.SetProviderPriority(s.priority.priority)
}
