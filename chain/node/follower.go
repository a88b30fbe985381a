package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtpubsub "github.com/cometbft/cometbft/libs/pubsub"
	"github.com/cometbft/cometbft/mempool"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	"github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
)

// dropGrace is how many blocks a submitted transaction may be missing from
// both the mempool and the blocks before BroadcastTx gives up on it with
// ErrDropped. The grace covers another validator still proposing it.
const dropGrace = 3

// followerCapacity is how many committed blocks the follower's event
// subscription buffers. Were it ever outrun, CometBFT cancels the
// subscription; the follower then subscribes again and reads the blocks it
// missed from the block store, so no waiter is lost.
const followerCapacity = 256

// follower watches the node's committed blocks (one NewBlock event
// subscription per node) and wakes the transactions and heights waited on by
// local transports. One subscription for all waiters keeps the cost per
// block independent of the number of pending transactions.
type follower struct {
	bus *types.EventBus
	c   rpcclient.Client
	log *slog.Logger
	// pool reports whether a transaction is still in the mempool, and
	// stored the height of the block store; nil disables drop detection.
	pool   txPool
	stored func() int64

	mu      sync.Mutex
	height  int64
	tick    chan struct{} // closed and replaced when height advances
	waiters map[string][]*waiter
	err     error // set once stopped

	cancel context.CancelFunc
	done   chan struct{}
}

type waiter struct {
	key      string
	ch       chan txOutcome // buffered 1
	admitted bool           // passed CheckTx: in the mempool
	missing  int64          // height it was first seen missing, or 0
}

// txPool is the part of CometBFT's mempool the follower asks.
type txPool interface {
	InMempool(types.TxKey) bool
}

// ErrDropped is returned by BroadcastTx when a transaction that passed
// CheckTx left the node's mempool without being committed: it failed the
// re-check after a block (typically its nonce was used meanwhile) or was
// evicted. Sign and submit it again.
var ErrDropped = errors.New("transaction was dropped from the mempool without being committed")

type txOutcome struct {
	c   chain.Committed
	err error
}

// startFollower subscribes to bus and follows blocks above height, the
// height committed when the subscription was made.
func startFollower(bus *types.EventBus, c rpcclient.Client, pool txPool, stored func() int64, height int64, log *slog.Logger) (*follower, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{
		bus: bus, c: c, log: log, pool: pool, stored: stored,
		height:  height,
		tick:    make(chan struct{}),
		waiters: map[string][]*waiter{},
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	sub, err := f.subscribe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go f.run(ctx, sub)
	return f, nil
}

func (f *follower) subscriber() string { return fmt.Sprintf("satchel-follower-%p", f) }

func (f *follower) subscribe(ctx context.Context) (types.Subscription, error) {
	sub, err := f.bus.Subscribe(ctx, f.subscriber(), types.EventQueryNewBlock, followerCapacity)
	if err != nil {
		return nil, fmt.Errorf("subscribe to new blocks: %w", err)
	}
	return sub, nil
}

// stop ends the follower; waiters get ErrStopped.
func (f *follower) stop() {
	f.cancel()
	<-f.done
}

func (f *follower) run(ctx context.Context, sub types.Subscription) {
	defer close(f.done)
	defer f.fail(ErrStopped)
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-sub.Out():
			ev, ok := msg.Data().(types.EventDataNewBlock)
			if !ok || ev.Block == nil {
				continue
			}
			f.catchUp(ctx, ev.Block.Height-1)
			f.deliver(ev.Block.Height, ev.Block.Txs, ev.ResultFinalizeBlock.TxResults)
		case <-sub.Canceled():
			if ctx.Err() != nil || !errors.Is(sub.Err(), cmtpubsub.ErrOutOfCapacity) {
				return // the node is stopping
			}
			f.log.Warn("block subscription fell behind; resubscribing")
			var err error
			if sub, err = f.subscribe(ctx); err != nil {
				f.log.Warn("resubscribe to blocks", "err", err)
				return
			}
		}
	}
}

// catchUp delivers the blocks after the last one seen up to height, read
// from the node's stores; they were missed while resubscribing.
func (f *follower) catchUp(ctx context.Context, height int64) {
	for h := f.latest() + 1; h <= height; h++ {
		blk, err := f.c.Block(ctx, &h)
		if err != nil {
			f.log.Warn("catch up: read block", "height", h, "err", err)
			return
		}
		res, err := f.c.BlockResults(ctx, &h)
		if err != nil {
			f.log.Warn("catch up: read block results", "height", h, "err", err)
			return
		}
		f.deliver(h, blk.Block.Txs, res.TxResults)
	}
}

// deliver wakes the waiters of the transactions of the committed block at
// height and then those waiting for the height.
func (f *follower) deliver(height int64, txs types.Txs, results []*abci.ExecTxResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if height <= f.height {
		return
	}
	if len(f.waiters) > 0 {
		for i, tx := range txs {
			hash := tx.Hash()
			ws := f.waiters[string(hash)]
			if len(ws) == 0 {
				continue
			}
			delete(f.waiters, string(hash))
			var out txOutcome
			if i >= len(results) {
				out.err = fmt.Errorf("block %d has no result for tx %X", height, hash)
			} else if r, err := rpc.TxResult(results[i]); err != nil {
				out.err = fmt.Errorf("tx %X: %w", hash, err)
			} else {
				out.c = chain.Committed{Height: height, TxHash: hash, Result: r}
			}
			for _, w := range ws {
				w.ch <- out
			}
		}
	}
	f.checkDropped(height)
	f.height = height
	close(f.tick)
	f.tick = make(chan struct{})
}

// checkDropped fails the waiters of admitted transactions that have been
// neither in the mempool nor in a block for dropGrace blocks. Called with
// f.mu held, after the block at height was delivered.
func (f *follower) checkDropped(height int64) {
	if f.pool == nil {
		return
	}
	for key, ws := range f.waiters {
		var missing []*waiter
		for _, w := range ws {
			if w.admitted {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if f.pool.InMempool(types.TxKey([]byte(key))) {
			for _, w := range missing {
				w.missing = 0
			}
			continue
		}
		// Not in the mempool. If a later block is already stored, its
		// commit may have removed the transaction: that block's event
		// decides.
		if f.stored() > height {
			continue
		}
		for _, w := range missing {
			if w.missing == 0 {
				w.missing = height
			}
			if height-w.missing >= dropGrace {
				w.ch <- txOutcome{err: fmt.Errorf("%w (tx %X, missing since block %d)", ErrDropped, []byte(key), w.missing)}
				f.remove(w)
			}
		}
	}
}

// fail stops the follower with err, waking every waiter.
func (f *follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	f.err = err
	for k, ws := range f.waiters {
		for _, w := range ws {
			w.ch <- txOutcome{err: err}
		}
		delete(f.waiters, k)
	}
	close(f.tick)
}

// watch registers interest in tx before it is submitted, so its block
// cannot be missed.
func (f *follower) watch(tx []byte) (*waiter, error) {
	w := &waiter{key: string(types.Tx(tx).Hash()), ch: make(chan txOutcome, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.waiters[w.key] = append(f.waiters[w.key], w)
	return w, nil
}

// admit marks w's transaction as accepted into the mempool.
func (f *follower) admit(w *waiter) {
	f.mu.Lock()
	w.admitted = true
	f.mu.Unlock()
}

// unwatch forgets w if it is still registered.
func (f *follower) unwatch(w *waiter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remove(w)
}

// remove forgets w; f.mu is held.
func (f *follower) remove(w *waiter) {
	ws := f.waiters[w.key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(f.waiters, w.key)
	} else {
		f.waiters[w.key] = ws
	}
}

func (f *follower) latest() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.height
}

func (f *follower) stopped() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// waitFor blocks until height h is committed, the follower stops or ctx ends.
func (f *follower) waitFor(ctx context.Context, h int64) error {
	for {
		f.mu.Lock()
		height, tick, err := f.height, f.tick, f.err
		f.mu.Unlock()
		if height >= h {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-tick:
		case <-ctx.Done():
			return fmt.Errorf("waiting for height %d (at %d): %w", h, height, ctx.Err())
		}
	}
}

// invalidTx extracts the application's rejection from a local
// BroadcastTxSync error.
func invalidTx(err error) (code uint32, log string, ok bool) {
	var inv mempool.ErrInvalidTx
	if errors.As(err, &inv) {
		return inv.Code, inv.Log, true
	}
	var pinv *mempool.ErrInvalidTx
	if errors.As(err, &pinv) && pinv != nil {
		return pinv.Code, pinv.Log, true
	}
	return 0, "", false
}
