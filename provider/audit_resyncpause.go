package provider

import (
	"context"
	"time"
)

// Pauses of the re-check loop: when every queued re-check has started and
// its auditor's budget is spent, none may take a turn until a budget is
// paid back, and taking them and putting them back would spin.

// waitQueued waits until a re-check is queued or ctx ends.
func (a *auditor) waitQueued(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-a.wake:
	}
}

// waitRefill waits, every queued re-check paused on its auditor's spent
// budget, until the first of those budgets holds a byte again, a FAIL is
// queued (it may be another auditor's, whose turn need not wait), or ctx
// ends. It waits on the budgets' clock (resyncBudgets.sleep).
func (a *auditor) waitRefill(ctx context.Context) {
	d, ok := a.earliestRefill()
	switch {
	case !ok: // no budget refills: only a new FAIL may run
		a.waitQueued(ctx)
		return
	case d <= 0:
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.wake:
			cancel()
		case <-wctx.Done():
		}
	}()
	a.resyncBudget.sleep(wctx, d)
}

// earliestRefill returns how long until the budget of one of the waiting
// re-checks' auditors holds a byte again, and false if none ever will.
func (a *auditor) earliestRefill() (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first time.Duration
	found := false
	for _, req := range a.queue.waiting {
		if d, ok := a.resyncBudget.refillIn(req.auditor); ok && (!found || d < first) {
			first, found = d, true
		}
	}
	return first, found
}
