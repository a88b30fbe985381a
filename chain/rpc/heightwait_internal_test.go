package rpc

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// blockWaiter is a transport whose waits for a height end when reached is
// closed (or their context ends); it counts them and their cancellations.
type blockWaiter struct {
	chain.Transport
	reached          chan struct{}
	calls, cancelled atomic.Int64
	entered, left    chan struct{}
}

func (b *blockWaiter) WaitForHeight(ctx context.Context, _ int64) error {
	b.calls.Add(1)
	b.entered <- struct{}{}
	select {
	case <-b.reached:
		return nil
	case <-ctx.Done():
		b.cancelled.Add(1)
		b.left <- struct{}{}
		return ctx.Err()
	}
}

// A shared wait stops polling when its last waiter leaves, and a later
// wait polls anew instead of inheriting the abandoned one's error; a
// height reached is not waited for again.
func TestHeightWaitsLeaveAndReach(t *testing.T) {
	b := &blockWaiter{reached: make(chan struct{}), entered: make(chan struct{}, 10), left: make(chan struct{}, 10)}
	hw := newHeightWaits(b)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- hw.wait(ctx, 7) }()
	}
	<-b.entered // one poll for both
	deadline := time.Now().Add(10 * time.Second)
	for joined := false; !joined; {
		if time.Now().After(deadline) {
			t.Fatal("the two waits never joined one poll")
		}
		hw.mu.Lock()
		joined = hw.waits[7] != nil && hw.waits[7].users == 2
		hw.mu.Unlock()
		runtime.Gosched()
	}
	cancel()
	<-b.left // the poll stopped once both left
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("a left wait = %v; want its context's error", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- hw.wait(context.Background(), 7) }()
	close(b.reached)
	if err := <-done; err != nil {
		t.Fatalf("a wait after the others left = %v; want it to poll anew and succeed", err)
	}
	calls := b.calls.Load()
	if calls != 2 || b.cancelled.Load() != 1 {
		t.Fatalf("%d polls, %d cancelled; want the abandoned one and a new one", calls, b.cancelled.Load())
	}
	if err := hw.wait(context.Background(), 7); err != nil || b.calls.Load() != calls {
		t.Fatalf("a wait for a height reached = %v after %d polls; want nil at once", err, b.calls.Load()-calls)
	}
}
