// Package ctxsleep waits a while or until a context ends, whichever comes
// first: the pause of a retry loop that must stop as soon as its owner does.
//
//	for {
//		if err := try(ctx); err == nil {
//			return nil
//		}
//		if !ctxsleep.Sleep(ctx, backoff) {
//			return ctx.Err()
//		}
//	}
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, reporting whether d passed (false: ctx
// ended first, or had ended already). Its timer is stopped on return.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Poll checks cond every 10 ms until it holds (nil) or ctx ends (its
// error): the wait for state that has no event to wait on. Tests and the
// testnet use it; a node's own loops wait on events.
func Poll(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
