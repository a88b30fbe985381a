// Package peerlimit rate-limits what each peer may do: a token bucket per
// peer, kept for the most recently seen peers only, so the memory is
// bounded however many peer IDs come along, and a busy peer stays limited
// while it is among the recently seen.
package peerlimit

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Limits holds a limiter per peer.
type Limits struct {
	rate  rate.Limit
	burst int

	mu     sync.Mutex
	limits *simplelru.LRU[peer.ID, *rate.Limiter] // least recently seen first out
}

// New returns limits of perSecond with burst for each of the size most
// recently seen peers (size at least 1).
func New(perSecond float64, burst, size int) *Limits {
	l, _ := simplelru.NewLRU[peer.ID, *rate.Limiter](max(size, 1), nil) // errors only for a size <= 0
	return &Limits{rate: rate.Limit(perSecond), burst: burst, limits: l}
}

// Allow reports whether p may act once more at now, and counts it if so.
func (l *Limits) Allow(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.limits.Get(p)
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.limits.Add(p, lim)
	}
	return lim.AllowN(now, 1)
}

// Len returns how many peers' limiters are kept.
func (l *Limits) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limits.Len()
}
