package provider

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/satchel-net/satchel/internal/debtbucket"
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

// resyncBudgets are the node's and each auditor's re-check budgets.
type resyncBudgets struct {
	mu       sync.Mutex
	node     *debtbucket.Bucket
	auditors *simplelru.LRU[string, *debtbucket.Bucket]
	now      func() time.Time
}

func newResyncBudgets() *resyncBudgets {
	lru, _ := simplelru.NewLRU[string, *debtbucket.Bucket](maxResyncAuditors, nil) // errors only for a size <= 0
	return &resyncBudgets{node: debtbucket.New(ResyncRate, ResyncBurst), auditors: lru, now: time.Now}
}

func (r *resyncBudgets) auditor(a string) *debtbucket.Bucket {
	b, ok := r.auditors.Get(a)
	if !ok {
		b = debtbucket.New(AuditorResyncRate, AuditorResyncBurst)
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
	return r.auditor(auditor).Allow(now) && r.node.Allow(now)
}

// spend charges a re-check auditor asked for with the n bytes it read.
func (r *resyncBudgets) spend(auditor string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.auditor(auditor).Spend(now, n)
	r.node.Spend(now, n)
}
