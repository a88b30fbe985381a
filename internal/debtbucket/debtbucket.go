// Package debtbucket is a token bucket of bytes that may go into debt.
//
// A read whose size is known only once it is done (a block, a whole
// object) cannot be charged beforehand; so a Bucket lets a read start while
// it holds any tokens (Allow), and then takes what the read cost (Spend),
// which may leave it below zero. Reads are then refused until the rate has
// paid the debt back. What a Bucket lets through is therefore at most
// burst + rate × time, plus one read per reader that passed Allow before
// the bucket went into debt. A caller that must hold tokens before a read
// (so that concurrent reads cannot pass on the same ones) spends the most
// it may cost and refunds the rest (Refund); one that must not be refused
// for ever after a large spend bounds the debt (WithDebtLimit).
//
// Time is passed in (now), so callers choose the clock and tests need no
// sleeping.
package debtbucket

import (
	"math"
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
	floor  float64 // the deepest debt, as negative tokens; -Inf: none
	tokens float64
	last   time.Time // of the latest refill; zero before the first call
}

// Option configures New.
type Option func(*Bucket)

// WithDebtLimit bounds the debt: Spend takes the bucket no lower than
// minus limit bytes, so however much is spent the rate pays it back
// within limit/rate seconds. A negative limit is taken as 0.
func WithDebtLimit(limit int64) Option {
	return func(b *Bucket) { b.floor = -float64(max(limit, 0)) }
}

// New returns a full bucket that refills at perSecond bytes a second up to
// burst bytes. A negative rate or burst is taken as 0: a rate of 0 never
// refills, and a burst of 0 never allows. Its debt has no bound unless
// WithDebtLimit sets one.
func New(perSecond, burst int64, opts ...Option) *Bucket {
	f := float64(max(burst, 0))
	b := &Bucket{rate: float64(max(perSecond, 0)), burst: f, floor: math.Inf(-1), tokens: f}
	for _, o := range opts {
		o(b)
	}
	return b
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
// fewer (no deeper than its debt limit). An n of 0 or less takes nothing.
func (b *Bucket) Spend(now time.Time, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens = max(b.floor, b.tokens-float64(max(n, 0)))
}

// Refund gives back at now n bytes spent that a read turned out not to
// cost (a caller that spends the most a read may cost before it starts,
// so that concurrent readers cannot pass on the same tokens), up to
// burst. An n of 0 or less gives nothing.
func (b *Bucket) Refund(now time.Time, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens = min(b.burst, b.tokens+float64(max(n, 0)))
}

// Tokens reports the bytes the bucket holds at now: below zero, its debt.
func (b *Bucket) Tokens(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens
}

// Full reports whether the bucket holds its whole burst at now: it is
// then as a new one, and a caller keeping buckets by key may forget it.
func (b *Bucket) Full(now time.Time) bool {
	return b.Tokens(now) >= b.burst
}
