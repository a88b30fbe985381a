package operators

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// readTimeout bounds a background read of the active storage operators
// for the DHT's record priority.
const readTimeout = 30 * time.Second

// Priority names the peers whose DHT provider records a node's host keeps
// first (p2p.Host.SetProviderPriority): the active operators of storage
// buckets, as the chain last said (a Set, which the node may share with
// other uses). Peer IDs are free, so a swarm of them announcing random
// keys would otherwise crowd out the records of the peers that announce
// most, the storage providers; operating a bucket is not free.
type Priority struct {
	set    *Set
	lister Lister
	log    *slog.Logger
	wake   chan struct{} // asks Run for a read; buffered, one pending at most
}

// NewPriority returns the record priority of set, read through lister. Run
// does its reads; Is answers the DHT.
func NewPriority(set *Set, lister Lister, log *slog.Logger) *Priority {
	return &Priority{set: set, lister: lister, log: log, wake: make(chan struct{}, 1)}
}

// Is reports whether p actively operates a storage bucket. The DHT asks it
// for every provider record, under its provider manager's lock, so it
// never waits for the chain: it answers from the set last read and, when
// that is stale, asks Run to read it again.
func (r *Priority) Is(p peer.ID) bool {
	op, read := r.set.Cached(p)
	if read {
		r.Ask()
	}
	return op
}

// Ask wakes Run for a read without waiting.
func (r *Priority) Ask() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reads the active operators whenever Is (or Ask) asks, until ctx
// ends.
func (r *Priority) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		if err := r.set.Refresh(rctx, r.lister); err != nil && ctx.Err() == nil {
			r.log.Debug("DHT record priority: read the storage operators", "err", err)
		}
		cancel()
	}
}
