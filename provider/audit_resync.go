package provider

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Re-checks a failed result asks for read the whole object, so they are
// paid for in bytes read: from the auditor's budget and the node's. A
// failed result is queued only while neither is spent (in debt); the
// re-check then charges both with what it read, so one re-check may
// overdraw them (a failing object is re-read whole), and the next waits
// until they are paid back. A result skipped so starts no cooldown: the
// auditor's next round fails the object again if it still fails.
const (
	// ResyncRate and ResyncBurst are the bytes a second (and at once)
	// re-checks on failed results may read, all auditors together.
	ResyncRate  = 8 << 20
	ResyncBurst = 1 << 30
	// AuditorResyncRate and AuditorResyncBurst are one auditor's share.
	AuditorResyncRate  = ResyncRate / 4
	AuditorResyncBurst = ResyncBurst / 4
	// maxResyncAuditors bounds the per-auditor budgets kept (the least
	// recently used dropped first); only the operators of a node's bags'
	// buckets reach them.
	maxResyncAuditors = 1024
)

// byteBudget is a token bucket of bytes that may go into debt: a read is
// allowed while it holds any tokens, and then takes what it read.
type byteBudget struct {
	rate, burst, tokens float64
	last                time.Time
}

func newByteBudget(perSecond, burst int64) *byteBudget {
	return &byteBudget{rate: float64(perSecond), burst: float64(burst), tokens: float64(burst)}
}

// refill adds what accrued since the last call.
func (b *byteBudget) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

func (b *byteBudget) allow(now time.Time) bool {
	b.refill(now)
	return b.tokens > 0
}

func (b *byteBudget) spend(now time.Time, n int64) {
	b.refill(now)
	b.tokens -= float64(n)
}

// resyncBudgets are the node's and each auditor's re-check budgets.
type resyncBudgets struct {
	mu       sync.Mutex
	node     *byteBudget
	auditors *simplelru.LRU[string, *byteBudget]
	now      func() time.Time
}

func newResyncBudgets() *resyncBudgets {
	lru, _ := simplelru.NewLRU[string, *byteBudget](maxResyncAuditors, nil) // errors only for a size <= 0
	return &resyncBudgets{node: newByteBudget(ResyncRate, ResyncBurst), auditors: lru, now: time.Now}
}

func (r *resyncBudgets) auditor(a string) *byteBudget {
	b, ok := r.auditors.Get(a)
	if !ok {
		b = newByteBudget(AuditorResyncRate, AuditorResyncBurst)
		r.auditors.Add(a, b)
	}
	return b
}

// allow reports whether a re-check asked for by auditor may run now:
// neither its budget nor the node's is spent.
func (r *resyncBudgets) allow(auditor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	return r.auditor(auditor).allow(now) && r.node.allow(now)
}

// spend charges a re-check auditor asked for with the n bytes it read.
func (r *resyncBudgets) spend(auditor string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.auditor(auditor).spend(now, n)
	r.node.spend(now, n)
}
