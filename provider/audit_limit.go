package provider

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/internal/operators"
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

// resultRelay is what decides whether a result about a bag this node does
// not store is relayed.
type resultRelay struct {
	mu        sync.Mutex        // serialises allow and guards now
	authors   *peerlimit.Limits // per auditor
	all       *rate.Limiter     // all auditors together
	operators operators.Set
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
