package provider

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Results per auditor. A node relays the results about bags it does not
// store for their providers to check; it cannot check the auditor, so it
// takes at most ResultRate a second from one (the rest ignored: not
// delivered, not relayed), and a flood about random bags stops at the
// first hop instead of reaching every node. An auditor paces its own
// results at half that (auditor.publishPace), so a round of many small
// objects is not cut. Results about a node's own bags are not limited:
// their auditor must operate one of the bag's buckets.
const (
	// ResultRate and ResultBurst are the results a second (and at once)
	// a node takes from one auditor.
	ResultRate  = 50
	ResultBurst = 500
	// maxResultAuthors bounds the per-auditor limiters kept; the least
	// recently heard auditor's is dropped first.
	maxResultAuthors = 4096
)

// authorLimits rate-limits the results of each auditor.
type authorLimits struct {
	mu     sync.Mutex
	limits *simplelru.LRU[peer.ID, *rate.Limiter]
}

func newAuthorLimits() *authorLimits {
	l, _ := simplelru.NewLRU[peer.ID, *rate.Limiter](maxResultAuthors, nil) // errors only for a size <= 0
	return &authorLimits{limits: l}
}

// allow reports whether a result from author may be taken now.
func (a *authorLimits) allow(author peer.ID, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.limits.Get(author)
	if !ok {
		l = rate.NewLimiter(ResultRate, ResultBurst)
		a.limits.Add(author, l)
	}
	return l.AllowN(now, 1)
}
