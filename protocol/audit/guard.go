package audit

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// guard is a handler's defence: a per-challenger rate limit, a bound on
// challenges answered at once, and the nonces already answered.
type guard struct {
	rate  rate.Limit
	burst int
	slots chan struct{}

	mu     sync.Mutex
	limits map[peer.ID]*rate.Limiter
	nonces map[string]time.Time // challenger+nonce → when it may be forgotten
	oldest time.Time
}

func newGuard(perSecond float64, burst int) *guard {
	return &guard{
		rate: rate.Limit(perSecond), burst: burst,
		slots:  make(chan struct{}, MaxConcurrent),
		limits: map[peer.ID]*rate.Limiter{},
		nonces: map[string]time.Time{},
	}
}

// admit takes a slot for a challenge from p, or says why not. The caller
// calls release when done.
func (g *guard) admit(p peer.ID) (release func(), err error) {
	g.mu.Lock()
	l := g.limits[p]
	if l == nil {
		if len(g.limits) >= maxChallengers {
			clear(g.limits) // forget the quiet ones; a full bucket each is generous enough
		}
		l = rate.NewLimiter(g.rate, g.burst)
		g.limits[p] = l
	}
	ok := l.Allow()
	g.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: challenger %s is over its rate of %.2g challenges a second; wait", ErrRefused, p, float64(g.rate))
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
		return nil, fmt.Errorf("%w: %d challenges are being answered; try again later", ErrRefused, MaxConcurrent)
	}
}

// fresh records p's nonce, failing with ErrReplay if it was seen within
// the replay window.
func (g *guard) fresh(p peer.ID, nonce []byte, now time.Time) error {
	key := string(p) + string(nonce)
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.nonces[key]; ok && now.Before(until) {
		return fmt.Errorf("%w: nonce %x from %s was answered already", ErrReplay, nonce, p)
	}
	if len(g.nonces) >= maxReplayEntries {
		for k, until := range g.nonces {
			if !now.Before(until) {
				delete(g.nonces, k)
			}
		}
		if len(g.nonces) >= maxReplayEntries {
			return fmt.Errorf("%w: too many recent challenges; try again later", ErrRefused)
		}
	}
	g.nonces[key] = now.Add(2 * ClockWindow)
	return nil
}
