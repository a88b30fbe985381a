package provider

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/peerlimit"
)

// Results relayed. A node relays the results about bags it does not store
// for their providers to check. It relays only results whose auditor is the
// active operator of some storage bucket, as the chain says (results from
// anyone else are rejected, so gossipsub scores down the peer that sent
// them), at most ResultRate a second from one auditor and RelayRate a
// second from all together (the rest ignored: not delivered, not relayed).
// Keys are free but operating a bucket is not, so a flood of results signed
// by fresh keys stops at the first hop, and an operator's flood is cut to
// what one node relays. An auditor paces its own results at half
// ResultRate (auditor.publishPace), so a round of many small objects is not
// cut. Results about a node's own bags are not limited: their auditor must
// operate one of the bag's buckets.
const (
	// ResultRate and ResultBurst are the results a second (and at once)
	// a node relays from one auditor.
	ResultRate  = 50
	ResultBurst = 500
	// RelayRate and RelayBurst are the results a second (and at once) a
	// node relays from all auditors together: five auditors at their
	// ResultRate, two auditors' bursts.
	RelayRate  = 5 * ResultRate
	RelayBurst = 2 * ResultBurst
	// maxResultAuthors bounds the per-auditor limiters kept; the least
	// recently heard auditor's is dropped first.
	maxResultAuthors = 4096
)

// How long the set of active storage operators is trusted (operatorSetTTL),
// and how old it must be before a result from a peer not in it makes the
// node read it again (operatorSetRecheck): a new operator's results are
// relayed within seconds, and a flood of strangers costs at most one chain
// read per operatorSetRecheck.
const (
	operatorSetTTL     = 30 * time.Second
	operatorSetRecheck = 5 * time.Second
)

// resultRelay is what decides whether a result about a bag this node does
// not store is relayed.
type resultRelay struct {
	mu        sync.Mutex        // serialises allow and guards now
	authors   *peerlimit.Limits // per auditor
	all       *rate.Limiter     // all auditors together
	operators activeOperators
	now       func() time.Time // the clock of the rates; tests stop it
}

func newResultRelay() *resultRelay {
	return &resultRelay{
		authors: peerlimit.New(ResultRate, ResultBurst, maxResultAuthors),
		all:     rate.NewLimiter(RelayRate, RelayBurst),
		now:     time.Now,
	}
}

// allow takes one result of author from the per-auditor and the node-wide
// budgets. It reads the clock under its lock: validators run concurrently,
// and a rate.Limiter handed times out of order (a goroutine's time.Now
// older than the last one it saw) counts the interval between them twice,
// letting through more than its rate.
func (r *resultRelay) allow(author peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	return r.authors.Allow(author, now) && r.all.AllowN(now, 1)
}

// bucketLister lists every storage bucket; *chain.Client is one.
type bucketLister interface {
	StorageBuckets(ctx context.Context) ([]chain.StorageBucket, error)
}

// activeOperators is the cached set of peers that actively operate a
// storage bucket, from the buckets' operator metadata on chain. Concurrent
// reads share one chain query.
type activeOperators struct {
	mu      sync.Mutex
	ids     map[peer.ID]bool
	at      time.Time     // when ids was read
	reading chan struct{} // closed when the read under way ends; nil if none
	// ever holds every peer ID a read found operating (up to
	// maxEverOperators): a relay whose view of the chain is older than
	// this node's may still pass on their results.
	ever map[peer.ID]bool
	// asked is when cached last asked for a read.
	asked time.Time
}

// maxEverOperators bounds activeOperators.ever; past it the set starts
// again from the current operators.
const maxEverOperators = 1 << 16

// everOperated reports whether a read ever found p operating a bucket.
func (o *activeOperators) everOperated(p peer.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ever[p]
}

// rememberLocked adds the operators of a read to ever. Call it with mu held.
func (o *activeOperators) rememberLocked(ids map[peer.ID]bool) {
	if o.ever == nil || len(o.ever)+len(ids) > maxEverOperators {
		o.ever = make(map[peer.ID]bool, len(ids))
	}
	for id := range ids {
		o.ever[id] = true
	}
}

// forget makes the set read stale, so the next question reads it again (an
// operator event: a bucket's operator or its peer ID changed); cached
// answers from it until then. A read under way stands: it began before the
// change and is trusted no longer than operatorSetRecheck for a no.
func (o *activeOperators) forget() {
	o.mu.Lock()
	o.at = time.Time{}
	o.mu.Unlock()
}

// cached reports whether p actively operated a storage bucket at the last
// read of the chain (no if none succeeded yet), without waiting for one.
// read reports that the set is older than operatorSetTTL (or stale, or
// was never read), that no read is under way and none was asked for in
// the last operatorSetRecheck: the caller is to read it, in the
// background (refresh).
func (o *activeOperators) cached(p peer.ID) (op, read bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.reading == nil && now.Sub(o.at) >= operatorSetTTL && now.Sub(o.asked) >= operatorSetRecheck {
		o.asked, read = now, true
	}
	return o.ids[p], read
}

// refresh reads the set again unless it was read in the last
// operatorSetRecheck, sharing a read under way.
func (o *activeOperators) refresh(ctx context.Context, c bucketLister) error {
	_, err := o.operates(ctx, c, "")
	return err
}

// operates reports whether p actively operates a storage bucket, as the
// chain said at most operatorSetTTL ago (at most operatorSetRecheck ago
// when it says no). A failed read is an error, never a no.
func (o *activeOperators) operates(ctx context.Context, c bucketLister, p peer.ID) (bool, error) {
	o.mu.Lock()
	age := time.Since(o.at)
	if fresh := age < operatorSetRecheck || (age < operatorSetTTL && o.ids[p]); o.ids != nil && fresh {
		defer o.mu.Unlock()
		return o.ids[p], nil
	}
	wait := o.reading
	if wait == nil {
		done := make(chan struct{})
		o.reading = done
		o.mu.Unlock()
		ids, err := readActiveOperators(ctx, c)
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
	if o.ids == nil || time.Since(o.at) >= operatorSetTTL {
		return false, errOperatorsUnread
	}
	return o.ids[p], nil
}

// errOperatorsUnread is a read of the active operators that failed for
// another caller waiting on it.
var errOperatorsUnread = errors.New("the active storage operators could not be read from the chain; results are not relayed until they are")

// readActiveOperators returns the peer IDs of the active operators of
// every storage bucket.
func readActiveOperators(ctx context.Context, c bucketLister) (map[peer.ID]bool, error) {
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
