package rpc

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/satchel-net/satchel/chain"
)

// heightWaits merges the waits of a Proven transport for the next block:
// every read that found nothing waits for one, and each wait of the node's
// transport polls the node, so concurrent waits for one height share a
// single poll, and a wait for a height already seen returns at once.
type heightWaits struct {
	t       chain.Transport
	reached atomic.Int64 // the highest height a wait has seen

	mu    sync.Mutex
	waits map[int64]*heightWait
}

// heightWait is one poll for a height, shared by users callers; it is
// cancelled when all of them leave before it ends.
type heightWait struct {
	done   chan struct{}
	err    error
	users  int
	cancel context.CancelFunc
}

func newHeightWaits(t chain.Transport) *heightWaits {
	return &heightWaits{t: t, waits: map[int64]*heightWait{}}
}

// wait returns once the block at height h is committed, or ctx ends.
func (hw *heightWaits) wait(ctx context.Context, h int64) error {
	if h <= hw.reached.Load() {
		return nil
	}
	hw.mu.Lock()
	w := hw.waits[h]
	if w == nil {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		w = &heightWait{done: make(chan struct{}), cancel: cancel}
		hw.waits[h] = w
		go hw.poll(pctx, h, w)
	}
	w.users++
	hw.mu.Unlock()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		hw.mu.Lock()
		if w.users--; w.users == 0 {
			// Nobody waits: stop polling, and let a later wait start anew.
			w.cancel()
			if hw.waits[h] == w {
				delete(hw.waits, h)
			}
		}
		hw.mu.Unlock()
		return ctx.Err()
	}
}

// poll waits for h through the transport for every user of w.
func (hw *heightWaits) poll(ctx context.Context, h int64, w *heightWait) {
	err := hw.t.WaitForHeight(ctx, h)
	if err == nil {
		for r := hw.reached.Load(); r < h && !hw.reached.CompareAndSwap(r, h); r = hw.reached.Load() {
		}
	}
	hw.mu.Lock()
	if hw.waits[h] == w {
		delete(hw.waits, h)
	}
	w.err = err
	hw.mu.Unlock()
	w.cancel()
	close(w.done)
}
