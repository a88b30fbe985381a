package provider

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/internal/debtbucket"
)

// Re-checks a failed result asks for read the whole object, so they are
// paid for in bytes read, block by block, from the auditor's budget and the
// node's. A failed result is queued, and each turn of its re-check taken,
// only while its auditor's budget is not spent (in debt); a turn may
// overdraw it (by at most one turn's reads), and then that auditor's next
// FAILs are skipped and its started re-checks pause until it is paid back,
// so an operator failing large objects spends its own share, not the
// node's: its budget pays for the turns it causes, however many objects
// it has queued.
// The node's budget paces the reads instead: a re-check waits for it after
// each block, so a large object takes its time and leaves no debt behind,
// and the FAILs heard meanwhile wait in the queue (session 15: they were
// skipped while one object's read left the node's budget in debt, for
// hours after a large one). A result skipped starts no cooldown: the
// auditor's next round fails the object again if it still fails. The
// queued objects are re-checked in turns of ResyncSlice bytes each
// (audit_resyncqueue.go), so a large one does not hold up the others.
const (
	// ResyncRate and ResyncBurst are the bytes a second (and at once)
	// re-checks on failed results may read, all auditors together.
	ResyncRate  = 8 << 20
	ResyncBurst = 1 << 30
	// AuditorResyncRate and AuditorResyncBurst are one auditor's share.
	AuditorResyncRate  = ResyncRate / 4
	AuditorResyncBurst = ResyncBurst / 4
	// ResyncSlice is what one object's re-check reads in its turn (the
	// block that crosses it included) before the next queued object's
	// turn: 2 s at ResyncRate, so a small object queued behind any number
	// of large ones is re-checked within a turn of each of them (at most
	// maxQueuedResyncs-1), about 4.5 minutes (a first turn reads the
	// sampled chunks too, up to 16 MiB more), and a large one still reads
	// at least ResyncSlice in that time, all of ResyncRate when nothing
	// else is queued.
	ResyncSlice = 16 << 20
	// maxResyncAuditors bounds the per-auditor budgets kept (the least
	// recently used dropped first); only the operators of a node's bags'
	// buckets reach them.
	maxResyncAuditors = 1024
)

// resyncBudgets are the node's and each auditor's re-check budgets.
type resyncBudgets struct {
	mu       sync.Mutex
	node     *rate.Limiter // waited for, block by block
	slice    int64         // bytes an object's re-check reads in its turn (ResyncSlice)
	auditors *simplelru.LRU[string, *debtbucket.Bucket]
	// auditorRate and auditorBurst are each auditor's budget
	// (AuditorResyncRate, AuditorResyncBurst); tests set their own.
	auditorRate, auditorBurst int64
	now                       func() time.Time
	// sleep waits d or until ctx ends, reporting whether d passed; tests
	// move their clock on instead.
	sleep func(ctx context.Context, d time.Duration) bool
}

func newResyncBudgets() *resyncBudgets {
	lru, _ := simplelru.NewLRU[string, *debtbucket.Bucket](maxResyncAuditors, nil) // errors only for a size <= 0
	return &resyncBudgets{node: rate.NewLimiter(ResyncRate, ResyncBurst), slice: ResyncSlice, auditors: lru,
		auditorRate: AuditorResyncRate, auditorBurst: AuditorResyncBurst, now: time.Now, sleep: ctxsleep.Sleep}
}

func (r *resyncBudgets) auditor(a string) *debtbucket.Bucket {
	b, ok := r.auditors.Get(a)
	if !ok {
		b = debtbucket.New(r.auditorRate, r.auditorBurst)
		r.auditors.Add(a, b)
	}
	return b
}

// allow reports whether a re-check asked for by auditor may run: its
// budget is not spent. The node's is waited for as the re-check reads.
func (r *resyncBudgets) allow(auditor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auditor(auditor).Allow(r.now())
}

// refillIn returns how long until auditor's budget holds a byte again (0
// if it does now), and false if it never will (a rate of 0).
func (r *resyncBudgets) refillIn(auditor string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.auditor(auditor).Tokens(r.now())
	switch {
	case t > 0:
		return 0, true
	case r.auditorRate <= 0:
		return 0, false
	}
	return time.Duration(math.Ceil((1 - t) / float64(r.auditorRate) * float64(time.Second))), true
}

// spend charges a re-check auditor asked for with the n bytes it read, and
// waits until the node's budget has paid for them. It reports false if ctx
// ended first.
func (r *resyncBudgets) spend(ctx context.Context, auditor string, n int64) bool {
	r.mu.Lock()
	now := r.now()
	r.auditor(auditor).Spend(now, n)
	// A block larger than the burst waits for the burst: the limiter
	// reserves no more at once.
	res := r.node.ReserveN(now, int(min(n, int64(r.node.Burst()))))
	r.mu.Unlock()
	d := res.DelayFrom(now)
	return d <= 0 || r.sleep(ctx, d)
}
