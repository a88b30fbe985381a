package fetch

import (
	"context"
	"testing"
	"time"
)

// The pauses double from BusyRetryFirst, and the wait gives up, without
// pausing, when the next pause would go past Max; a cancelled context ends
// it at once.
func TestBusyWait(t *testing.T) {
	w := BusyWait{Max: BusyRetryFirst + 2*BusyRetryFirst}
	for i := range 2 {
		if ok, err := w.Wait(context.Background()); !ok || err != nil {
			t.Fatalf("pause %d: %v %v", i, ok, err)
		}
	}
	if w.Waited() != 3*BusyRetryFirst {
		t.Fatalf("waited %v, want %v", w.Waited(), 3*BusyRetryFirst)
	}
	if ok, err := w.Wait(context.Background()); ok || err != nil {
		t.Fatalf("past Max: %v %v, want false, nil", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&BusyWait{Max: time.Minute}).Wait(ctx); err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
}
