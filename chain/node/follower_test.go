package node

import (
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/types"
)

type fakePool map[types.TxKey]bool

func (p fakePool) InMempool(k types.TxKey) bool { return p[k] }

// newTestFollower is a follower fed by hand, without an event bus.
func newTestFollower(pool txPool, stored *int64) *follower {
	return &follower{
		log: discardLogger(), pool: pool, stored: func() int64 { return *stored },
		tick: make(chan struct{}), waiters: map[string][]*waiter{},
	}
}

func TestFollowerDeliversAndDrops(t *testing.T) {
	txA, txB, other := types.Tx("a"), types.Tx("b"), types.Tx("x")
	pool := fakePool{txA.Key(): true, txB.Key(): true}
	var stored int64
	f := newTestFollower(pool, &stored)
	block := func(h int64, txs ...types.Tx) {
		stored = h
		res := make([]*abci.ExecTxResult, len(txs))
		for i := range res {
			res[i] = &abci.ExecTxResult{}
		}
		f.deliver(h, txs, res)
	}

	wa, _ := f.watch(txA)
	wb, _ := f.watch(txB)
	wc, _ := f.watch(other) // never admitted: CheckTx still running
	f.admit(wa)
	f.admit(wb)

	block(1, txA)
	select {
	case r := <-wa.ch:
		if r.err != nil || r.c.Height != 1 {
			t.Fatalf("tx a = %+v", r)
		}
	default:
		t.Fatal("tx a not delivered with its block")
	}

	// b leaves the mempool without a block holding it. While a later block
	// is already stored, that block may hold it: no verdict yet.
	delete(pool, txB.Key())
	stored = 3
	f.deliver(2, nil, nil)
	if wb.missing != 0 {
		t.Fatal("tx b counted missing while a later block was stored")
	}
	for h := int64(3); h < 3+dropGrace; h++ {
		block(h)
		select {
		case r := <-wb.ch:
			t.Fatalf("tx b failed at block %d, within the grace: %v", h, r.err)
		default:
		}
	}
	block(3 + dropGrace)
	select {
	case r := <-wb.ch:
		if !errors.Is(r.err, ErrDropped) {
			t.Fatalf("tx b: %v, want ErrDropped", r.err)
		}
	default:
		t.Fatal("tx b not reported dropped after the grace")
	}
	select {
	case r := <-wc.ch:
		t.Fatalf("unadmitted tx got %+v", r)
	default:
	}
	if got := f.latest(); got != 3+dropGrace {
		t.Fatalf("height %d", got)
	}

	f.fail(ErrStopped)
	if r := <-wc.ch; !errors.Is(r.err, ErrStopped) {
		t.Fatalf("waiter after stop: %v", r.err)
	}
	if _, err := f.watch(txA); !errors.Is(err, ErrStopped) {
		t.Fatalf("watch after stop: %v", err)
	}
}
