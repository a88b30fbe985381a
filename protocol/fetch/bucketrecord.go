package fetch

import (
	"math"
	"time"

	"github.com/satchel-net/satchel/internal/debtbucket"
)

// bucketRecord is the buckets of keys charged lately, at most
// maxBudgetPeers of them, each going no lower than minus its burst; a key
// not in it has a full bucket, unless the record was full when one was
// charged: then the charge went to the overflow bucket, which every key
// not in the record shares. So charges beyond the record still bind, if
// not one key alone. The caller serialises its use.
type bucketRecord[K comparable] struct {
	rate, burst int64
	m           map[K]*debtbucket.Bucket
	overflow    *debtbucket.Bucket
}

func newBucketRecord[K comparable](rate, burst int64) bucketRecord[K] {
	return bucketRecord[K]{rate: rate, burst: burst, m: make(map[K]*debtbucket.Bucket), overflow: newDebtBucket(rate, burst)}
}

// newDebtBucket is a full bucket whose debt goes no deeper than its burst.
func newDebtBucket(rate, burst int64) *debtbucket.Bucket {
	return debtbucket.New(rate, burst, debtbucket.WithDebtLimit(burst))
}

// tokens returns what k's bucket holds at now: its own, or the overflow
// bucket's when it has none.
func (r *bucketRecord[K]) tokens(k K, now time.Time) float64 {
	b := r.m[k]
	if b == nil {
		b = r.overflow
	}
	return b.Tokens(now)
}

// charge takes n from k's bucket; a key not in the record gets a bucket of
// its own if the record has room (or makes room by forgetting buckets that
// have refilled), else the overflow bucket is charged.
func (r *bucketRecord[K]) charge(k K, n int64, now time.Time) {
	b := r.m[k]
	if b == nil && (len(r.m) < maxBudgetPeers || r.prune(now)) {
		b = newDebtBucket(r.rate, r.burst)
		r.m[k] = b
	}
	if b == nil {
		b = r.overflow
	}
	b.Spend(now, n)
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
