// Package debtbucket is a token bucket of bytes that may go into debt.
//
// A read whose size is known only once it is done (a block, a whole
// object) cannot be charged beforehand; so a Bucket lets a read start while
// it holds any tokens (Allow), and then takes what the read cost (Spend),
// which may leave it below zero. Reads are then refused until the rate has
// paid the debt back. What a Bucket lets through is therefore at most
// burst + rate × time, plus one read per reader that passed Allow before
// the bucket went into debt.
//
// Time is passed in (now), so callers choose the clock and tests need no
// sleeping.
package debtbucket

import (
	"sync"
	"time"
)

// Bucket is a token bucket of bytes that may go into debt. It is safe for
// concurrent use. Tokens are kept as a float64, so they neither overflow
// nor wrap whatever is spent or however long the bucket sits idle; above
// 2^53 bytes they are approximate.
type Bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes a second
	burst  float64
	tokens float64
	last   time.Time // of the latest refill; zero before the first call
}

// New returns a full bucket that refills at perSecond bytes a second up to
// burst bytes. A negative rate or burst is taken as 0: a rate of 0 never
// refills, and a burst of 0 never allows.
func New(perSecond, burst int64) *Bucket {
	b := float64(max(burst, 0))
	return &Bucket{rate: float64(max(perSecond, 0)), burst: b, tokens: b}
}

// refill adds what accrued since the last call, up to burst. Time counts
// from the first call; a now before the latest one (a clock stepping back)
// adds nothing and is not remembered. The caller holds mu.
func (b *Bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// Allow reports whether a read may start at now: the bucket holds any
// tokens (it is neither empty nor in debt). It takes nothing.
func (b *Bucket) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens > 0
}

// Spend takes n bytes read at now, going into debt if the bucket holds
// fewer. An n of 0 or less takes nothing.
func (b *Bucket) Spend(now time.Time, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= float64(max(n, 0))
}
