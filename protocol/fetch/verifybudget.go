package fetch

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The verification budget. A ranged GET of a block not verified within
// VerifiedFor reads and hashes the whole block (up to 2 MiB) to send what
// may be one byte; a peer walking many blocks that way would make the
// provider read its disk a million times faster than it sends. So each peer
// has a token bucket of bytes such reads may cost beyond what they send:
// it holds up to the burst and refills at the rate. A verifying read is
// made only while the bucket is above zero, which it leaves less the most
// a read may cost (MaxGetBytes), held before it reads so that concurrent
// GETs cannot pass on the same tokens; once read, what it did not cost
// (its block's size less the bytes sent is what it did) goes back. Past
// it, the GET is REFUSED: the peer reads the whole block (never charged:
// it sends what it reads) or waits. What a peer makes the provider read
// for ranges of blocks not verified lately is therefore at most
// burst + rate × time + MaxGetBytes more than what it is sent.

const (
	// DefaultRangeVerifyRate and DefaultRangeVerifyBurst are a peer's
	// verification budget (see WithRangeVerifyBudget): 4 MiB a second, 16
	// MiB at once.
	DefaultRangeVerifyRate  = 4 << 20
	DefaultRangeVerifyBurst = 16 << 20
	// maxBudgetPeers bounds the peers whose buckets are remembered; a
	// bucket that has refilled is forgotten (a fresh one is the same).
	maxBudgetPeers = 4096
)

// WithRangeVerifyBudget sets each peer's verification budget for ranged
// GETs of blocks not verified within VerifiedFor: rate bytes a second, burst
// bytes at once (defaults DefaultRangeVerifyRate, DefaultRangeVerifyBurst).
// A rate of 0 never refills. Non-positive bursts keep the default.
func WithRangeVerifyBudget(rate, burst int64) Option {
	return func(c *config) {
		if burst > 0 {
			c.verifyRate, c.verifyBurst = max(rate, 0), burst
		}
	}
}

// verifyBudget holds the peers' buckets.
type verifyBudget struct {
	rate, burst float64
	now         func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newVerifyBudget(rate, burst int64) *verifyBudget {
	if burst <= 0 {
		rate, burst = DefaultRangeVerifyRate, DefaultRangeVerifyBurst
	}
	return &verifyBudget{rate: float64(rate), burst: float64(burst), now: time.Now, peers: make(map[peer.ID]*bucket)}
}

// refill brings b up to now; the caller holds v.mu.
func (v *verifyBudget) refill(b *bucket, now time.Time) {
	b.tokens = min(v.burst, b.tokens+v.rate*now.Sub(b.at).Seconds())
	b.at = now
}

// take takes n bytes (what a verifying read may cost at most) from p's
// bucket and reports true, if the bucket is above zero; a GET then gives
// back what its read did not cost (refund). Held before the read, so
// concurrent GETs of one peer cannot all pass on the same tokens: the
// bucket goes below zero by one hold at most. When the record of peers is
// full of peers still refilling, a peer not in it is refused.
func (v *verifyBudget) take(p peer.ID, n uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	b := v.peers[p]
	if b == nil {
		if len(v.peers) >= maxBudgetPeers && !v.prune() {
			return false
		}
		b = &bucket{tokens: v.burst, at: now}
		v.peers[p] = b
	}
	v.refill(b, now)
	if b.tokens <= 0 {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// refund gives n bytes taken from p's bucket back.
func (v *verifyBudget) refund(p peer.ID, n uint64) {
	if n == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.peers[p]; b != nil {
		v.refill(b, v.now())
		b.tokens = min(v.burst, b.tokens+float64(n))
	}
}

// prune forgets the buckets that have refilled, and reports whether it
// made room; the caller holds v.mu.
func (v *verifyBudget) prune() bool {
	now := v.now()
	for p, b := range v.peers {
		if v.refill(b, now); b.tokens >= v.burst {
			delete(v.peers, p)
		}
	}
	return len(v.peers) < maxBudgetPeers
}
