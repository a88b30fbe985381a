package fetch

import (
	"context"
	"time"
)

// Retrying a block every holder of which answered busy (ErrProviderBusy):
// the reader pauses BusyRetryFirst, doubling up to BusyRetryMax, and asks
// again, for at most a bound (DefaultBusyWait unless the reader sets one).
const (
	BusyRetryFirst  = 250 * time.Millisecond
	BusyRetryMax    = 2 * time.Second
	DefaultBusyWait = 15 * time.Second
)

// BusyWait paces the retries of one block whose holders all answered
// busy. The zero value with Max set is ready to use.
type BusyWait struct {
	// Max bounds the pauses in all.
	Max time.Duration

	waited, pause time.Duration
}

// Wait pauses before the next try. It returns false at once when the pause
// would take the wait past Max (give up: the providers stay busy), and
// ctx's error when ctx ends first.
func (w *BusyWait) Wait(ctx context.Context) (bool, error) {
	if w.pause == 0 {
		w.pause = BusyRetryFirst
	}
	if w.waited+w.pause > w.Max {
		return false, nil
	}
	t := time.NewTimer(w.pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	w.waited += w.pause
	w.pause = min(2*w.pause, BusyRetryMax)
	return true, nil
}

// Waited returns how long Wait has paused so far.
func (w *BusyWait) Waited() time.Duration { return w.waited }
