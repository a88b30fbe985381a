package provider

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Results per auditor. An auditor's rounds are paced by its audit bandwidth
// (--audit-bandwidth, 1 MB/s by default, about one audit a second), so an
// honest auditor publishes a result a second or so; one that publishes
// hundreds is flooding. Results beyond the limit are ignored: not
// delivered, not relayed, so a flood stops at the first hop instead of
// reaching every node of the network.
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
