// Package operators keeps what a node knows of the chain's active storage
// operators: the set of peers that actively operate a storage bucket, read
// from the buckets' operator metadata and cached (Set), and the DHT record
// priority built on it (Priority). Operating a bucket is not free while
// peer IDs are, so nodes give these peers' audit results and provider
// records a standing no flood of fresh IDs can take.
package operators

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
)

// Lister lists every storage bucket; *chain.Client is one.
type Lister interface {
	StorageBuckets(ctx context.Context) ([]chain.StorageBucket, error)
}

// How long the set is trusted (TTL), and how old it must be before a
// question about a peer not in it makes the node read it again (Recheck):
// a new operator is known within seconds, and a flood of strangers costs
// at most one chain read per Recheck.
const (
	TTL     = 30 * time.Second
	Recheck = 5 * time.Second
)

// ErrUnread is the error of a read of the active operators that failed for
// another caller waiting on it.
var ErrUnread = errors.New("the active storage operators could not be read from the chain; results are not relayed until they are")

// maxEver bounds Set.ever; past it the set starts again from the current
// operators.
const maxEver = 1 << 16

// Set is the cached set of peers that actively operate a storage bucket,
// from the buckets' operator metadata on chain. Concurrent reads share one
// chain query. The zero Set is empty and ready to use.
type Set struct {
	mu      sync.Mutex
	ids     map[peer.ID]bool
	at      time.Time     // when ids was read
	reading chan struct{} // closed when the read under way ends; nil if none
	// ever holds every peer ID a read found operating (up to maxEver): a
	// relay whose view of the chain is older than this node's may still
	// pass on their results.
	ever map[peer.ID]bool
	// asked is when Cached last asked for a read.
	asked time.Time
}

// EverOperated reports whether a read ever found p operating a bucket.
func (o *Set) EverOperated(p peer.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ever[p]
}

// rememberLocked adds the operators of a read to ever. Call it with mu held.
func (o *Set) rememberLocked(ids map[peer.ID]bool) {
	if o.ever == nil || len(o.ever)+len(ids) > maxEver {
		o.ever = make(map[peer.ID]bool, len(ids))
	}
	for id := range ids {
		o.ever[id] = true
	}
}

// Forget makes the set read stale, so the next question reads it again (an
// operator event: a bucket's operator or its peer ID changed); Cached
// answers from it until then. A read under way stands: it began before the
// change and is trusted no longer than Recheck for a no.
func (o *Set) Forget() {
	o.mu.Lock()
	o.at = time.Time{}
	o.mu.Unlock()
}

// Cached reports whether p actively operated a storage bucket at the last
// read of the chain (no if none succeeded yet), without waiting for one.
// read reports that the set is older than TTL (or stale, or was never
// read), that no read is under way and none was asked for in the last
// Recheck: the caller is to read it, in the background (Refresh).
func (o *Set) Cached(p peer.ID) (op, read bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.reading == nil && now.Sub(o.at) >= TTL && now.Sub(o.asked) >= Recheck {
		o.asked, read = now, true
	}
	return o.ids[p], read
}

// Refresh reads the set again unless it was read in the last Recheck,
// sharing a read under way.
func (o *Set) Refresh(ctx context.Context, c Lister) error {
	_, err := o.Operates(ctx, c, "")
	return err
}

// Operates reports whether p actively operates a storage bucket, as the
// chain said at most TTL ago (at most Recheck ago when it says no). A
// failed read is an error, never a no.
func (o *Set) Operates(ctx context.Context, c Lister, p peer.ID) (bool, error) {
	o.mu.Lock()
	age := time.Since(o.at)
	if fresh := age < Recheck || (age < TTL && o.ids[p]); o.ids != nil && fresh {
		defer o.mu.Unlock()
		return o.ids[p], nil
	}
	wait := o.reading
	if wait == nil {
		done := make(chan struct{})
		o.reading = done
		o.mu.Unlock()
		ids, err := read(ctx, c)
		o.mu.Lock()
		o.reading = nil
		if err == nil {
			o.ids, o.at = ids, time.Now()
			o.rememberLocked(ids)
		}
		o.mu.Unlock()
		close(done)
		return ids[p], err
	}
	o.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids == nil || time.Since(o.at) >= TTL {
		return false, ErrUnread
	}
	return o.ids[p], nil
}

// read returns the peer IDs of the active operators of every storage
// bucket.
func read(ctx context.Context, c Lister) (map[peer.ID]bool, error) {
	buckets, err := c.StorageBuckets(ctx)
	if err != nil {
		return nil, err
	}
	ids := make(map[peer.ID]bool, len(buckets))
	for _, b := range buckets {
		if b.OperatorStatus != chain.OperatorActive || b.Metadata == nil {
			continue
		}
		if pid, err := peer.Decode(b.Metadata.PeerID); err == nil {
			ids[pid] = true
		}
	}
	return ids, nil
}
