package fetch

import (
	"hash/maphash"
	"math"
	"time"

	"github.com/satchel-net/satchel/internal/debtbucket"
)

// overflowSlots is how many overflow buckets a bucketRecord has.
const overflowSlots = 256

// bucketRecord is the buckets of keys charged lately, at most
// maxBudgetPeers of them (made with the record's options: the abandonment
// budget's go no lower than minus their burst); a key not in it has a
// full bucket, unless the record was full when one was
// charged: then the charge went to the key's overflow bucket, one of
// overflowSlots picked by a hash of the key under a seed of the record's
// own. So charges beyond the record still bind their chargers (as a
// bucket of their own would, and more: others share it), while a key never
// charged is refused only when its slot's bucket is spent: filling the
// record and spending one overflow bucket refuses a 256th of the
// newcomers, not all of them, and an attacker must spend every slot, 256
// bursts beyond the record, to refuse them all (until they refill). The
// caller serialises its use.
type bucketRecord[K comparable] struct {
	rate, burst int64
	opts        []debtbucket.Option
	m           map[K]*debtbucket.Bucket
	seed        maphash.Seed
	overflow    [overflowSlots]*debtbucket.Bucket // nil: full
}

// newBucketRecord returns an empty record of buckets of rate and burst,
// made with opts.
func newBucketRecord[K comparable](rate, burst int64, opts ...debtbucket.Option) bucketRecord[K] {
	return bucketRecord[K]{rate: rate, burst: burst, opts: opts, m: make(map[K]*debtbucket.Bucket), seed: maphash.MakeSeed()}
}

// slot returns the index of k's overflow bucket.
func (r *bucketRecord[K]) slot(k K) int {
	return int(maphash.Comparable(r.seed, k) % overflowSlots)
}

// tokens returns what k's bucket holds at now: its own, or its overflow
// bucket's when it has none.
func (r *bucketRecord[K]) tokens(k K, now time.Time) float64 {
	b := r.m[k]
	if b == nil {
		b = r.overflow[r.slot(k)]
	}
	if b == nil {
		return float64(r.burst)
	}
	return b.Tokens(now)
}

// charge takes n from k's bucket (bucket), and returns what the bucket
// took: n, or less where its debt limit stopped it.
func (r *bucketRecord[K]) charge(k K, n int64, now time.Time) int64 {
	b := r.bucket(k, now)
	before := b.Tokens(now)
	b.Spend(now, n)
	return int64(math.Round(before - b.Tokens(now)))
}

// bucket returns k's bucket, to be charged: its own; for a key not in the
// record, one of its own if the record has room (or makes room by
// forgetting buckets that have refilled), else its overflow bucket.
func (r *bucketRecord[K]) bucket(k K, now time.Time) *debtbucket.Bucket {
	if b := r.m[k]; b != nil {
		return b
	}
	if len(r.m) < maxBudgetPeers || r.prune(now) {
		b := debtbucket.New(r.rate, r.burst, r.opts...)
		r.m[k] = b
		return b
	}
	i := r.slot(k)
	if r.overflow[i] == nil {
		r.overflow[i] = debtbucket.New(r.rate, r.burst, r.opts...)
	}
	return r.overflow[i]
}

// prune forgets the buckets that have refilled, and reports whether it
// made room.
func (r *bucketRecord[K]) prune(now time.Time) bool {
	for k, b := range r.m {
		if b.Full(now) {
			delete(r.m, k)
		}
	}
	return len(r.m) < maxBudgetPeers
}

// times is n×v, saturating at the largest int64.
func times(n int, v int64) int64 {
	if v > 0 && int64(n) > math.MaxInt64/v {
		return math.MaxInt64
	}
	return int64(n) * v
}
