package debtbucket

import (
	"math"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)

// A new bucket is full: it allows until burst is spent, and not at 0.
func TestNewIsFull(t *testing.T) {
	b := New(1, 100)
	b.Spend(t0, 99)
	if !b.Allow(t0) {
		t.Fatal("1 of 100 bytes left: refused")
	}
	b.Spend(t0, 1)
	if b.Allow(t0) {
		t.Fatal("burst spent: allowed")
	}
}

// Allow takes nothing, however often it is asked.
func TestAllowTakesNothing(t *testing.T) {
	b := New(0, 1)
	for i := range 1000 {
		if !b.Allow(t0) {
			t.Fatalf("refused on call %d with nothing spent", i)
		}
	}
}

// However long a bucket sits idle, it holds at most burst.
func TestRefillStopsAtBurst(t *testing.T) {
	b := New(10, 100)
	b.Spend(t0, 100)
	later := t0.Add(time.Hour) // 36,000 bytes at the rate
	b.Spend(later, 100)
	if b.Allow(later) {
		t.Fatal("an hour idle held more than burst")
	}
	if !b.Allow(later.Add(200 * time.Millisecond)) {
		t.Fatal("2 bytes refilled at 10/s: refused")
	}
}

// A read may overdraw the bucket; reads are refused until the rate has
// paid the debt back, and allowed again just after.
func TestDebtPaidBackAtRate(t *testing.T) {
	b := New(100, 1000)
	if !b.Allow(t0) {
		t.Fatal("a full bucket refused")
	}
	b.Spend(t0, 1500) // 500 in debt
	for _, d := range []time.Duration{0, time.Second, 4990 * time.Millisecond, 5 * time.Second} {
		if b.Allow(t0.Add(d)) {
			t.Fatalf("500 bytes in debt at 100/s: allowed after %v", d)
		}
	}
	if !b.Allow(t0.Add(5020 * time.Millisecond)) {
		t.Fatal("debt paid back after 5s: refused 20ms later")
	}
}

// A clock stepping back adds nothing, and time then counts from the latest
// now seen, not from the earlier one.
func TestClockSteppingBack(t *testing.T) {
	b := New(100, 100)
	b.Spend(t0, 200) // 100 in debt
	if b.Allow(t0.Add(-time.Hour)) {
		t.Fatal("allowed at a now an hour before")
	}
	if b.Allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("50 bytes in debt: allowed (time counted from the earlier now)")
	}
	if !b.Allow(t0.Add(1010 * time.Millisecond)) {
		t.Fatal("debt paid back: refused")
	}
}

// A rate of 0 never refills; a burst of 0 never allows; negatives are 0.
func TestZeroValues(t *testing.T) {
	noRate := New(0, 10)
	noRate.Spend(t0, 10)
	if noRate.Allow(t0.Add(1000 * time.Hour)) {
		t.Fatal("a rate of 0 refilled")
	}
	for _, b := range []*Bucket{New(1<<20, 0), New(1<<20, -5)} {
		if b.Allow(t0) || b.Allow(t0.Add(time.Hour)) {
			t.Fatal("a burst of 0 allowed")
		}
	}
	negRate := New(-100, 10)
	if !negRate.Allow(t0) || !negRate.Allow(t0.Add(time.Hour)) {
		t.Fatal("a negative rate drained the bucket")
	}
}

// Spending 0 or less takes nothing (and gives nothing back).
func TestSpendNonPositive(t *testing.T) {
	b := New(0, 10)
	b.Spend(t0, 0)
	b.Spend(t0, -100)
	if !b.Allow(t0) {
		t.Fatal("spending 0 or less took tokens")
	}
	b.Spend(t0, 10)
	b.Spend(t0, -100)
	if b.Allow(t0) {
		t.Fatal("spending a negative gave tokens back")
	}
}

// Spending the largest int64s neither overflows nor wraps into credit, and
// the debt is still paid back at the rate across the longest idle times.
func TestHugeSpendNoOverflow(t *testing.T) {
	b := New(1<<30, 1<<30)
	b.Spend(t0, math.MaxInt64)
	b.Spend(t0, math.MaxInt64) // an int64 would wrap to credit here
	if b.Allow(t0) {
		t.Fatal("2 × MaxInt64 in debt: allowed")
	}
	// The debt, about 1.8e19 bytes, takes about 545 years at 1 GiB/s; the
	// longest time.Duration is about 292 years.
	step := time.Duration(math.MaxInt64)
	if b.Allow(t0.Add(step)) {
		t.Fatal("allowed after half the debt's time")
	}
	if !b.Allow(t0.Add(step).Add(step)) {
		t.Fatal("refused after the debt's time")
	}
}

// The largest rate and the longest idle time fill the bucket to burst, no
// more.
func TestHugeRateLongIdle(t *testing.T) {
	b := New(math.MaxInt64, 100)
	b.Allow(t0)
	later := t0.Add(time.Duration(math.MaxInt64))
	b.Spend(later, 100)
	if b.Allow(later) {
		t.Fatal("held more than burst after the longest idle")
	}
	if !b.Allow(later.Add(time.Nanosecond)) {
		t.Fatal("refused a nanosecond later at the largest rate")
	}
	full := New(math.MaxInt64, math.MaxInt64)
	full.Spend(t0, math.MaxInt64-1<<20) // a float64 holds the 1 MiB left exactly
	if !full.Allow(t0) {
		t.Fatal("1 MiB of a burst of MaxInt64 left: refused")
	}
	full.Spend(t0, 1<<20)
	if full.Allow(t0) {
		t.Fatal("a burst of MaxInt64 spent: allowed")
	}
}

// Concurrent spends are all counted (run with -race).
func TestConcurrentSpends(t *testing.T) {
	for _, c := range []struct {
		burst int64
		allow bool
	}{{1000, false}, {1001, true}} {
		b := New(0, c.burst)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				b.Allow(t0)
				b.Spend(t0, 10)
			})
		}
		wg.Wait()
		if b.Allow(t0) != c.allow {
			t.Fatalf("burst %d less 100 × 10: Allow = %v, want %v", c.burst, !c.allow, c.allow)
		}
	}
}

// A refund gives back what was spent, up to burst and no more; Tokens
// shows the debt, and Full a bucket as good as new.
func TestRefundTokensFull(t *testing.T) {
	b := New(10, 100)
	if !b.Full(t0) {
		t.Fatal("a new bucket is not full")
	}
	b.Spend(t0, 150)
	if got := b.Tokens(t0); got != -50 {
		t.Fatalf("Tokens = %v after spending 150 of 100, want -50", got)
	}
	b.Refund(t0, 60)
	if got := b.Tokens(t0); got != 10 {
		t.Fatalf("Tokens = %v after a refund of 60, want 10", got)
	}
	b.Refund(t0, 1000)
	b.Refund(t0, -5)
	if got := b.Tokens(t0); got != 100 || !b.Full(t0) {
		t.Fatalf("Tokens = %v after refunding more than was spent, want the burst, 100", got)
	}
	b.Spend(t0, 1)
	if b.Full(t0) || !b.Full(t0.Add(100*time.Millisecond)) {
		t.Fatal("Full wrong about a byte spent and refilled")
	}
}

// A debt limit stops Spend at minus the limit, so the rate pays any spend
// back in limit/rate; without one the debt is what was spent.
func TestDebtLimit(t *testing.T) {
	b := New(10, 100, WithDebtLimit(100))
	b.Spend(t0, 1<<30)
	if got := b.Tokens(t0); got != -100 {
		t.Fatalf("Tokens = %v after a huge spend with a 100-byte debt limit, want -100", got)
	}
	if !b.Allow(t0.Add(10*time.Second + time.Millisecond)) {
		t.Fatal("refused once the rate paid the limited debt back")
	}
	u := New(10, 100)
	u.Spend(t0, 1<<30)
	if got := u.Tokens(t0); got != 100-1<<30 {
		t.Fatalf("Tokens = %v without a debt limit, want %d", got, 100-1<<30)
	}
	z := New(10, 100, WithDebtLimit(-7))
	z.Spend(t0, 500)
	if got := z.Tokens(t0); got != 0 {
		t.Fatalf("Tokens = %v with a negative debt limit (taken as 0), want 0", got)
	}
}
