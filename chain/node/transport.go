package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
)

// ErrStopped is returned by a Transport whose node has stopped.
var ErrStopped = errors.New("chain node stopped")

// ErrDuplicateTx and ErrCatchingUp are the transports' errors of
// rpc.ErrDuplicateTx and rpc.ErrCatchingUp: a transaction the node has seen,
// and a node still catching up.
var (
	ErrDuplicateTx = rpc.ErrDuplicateTx
	ErrCatchingUp  = rpc.ErrCatchingUp
)

// localTransport is the in-process Transport of a running Node.
type localTransport struct {
	rpc.Conn
	f *follower
}

var _ chain.Transport = (*localTransport)(nil)

// Query runs an application query at the latest committed state.
func (t *localTransport) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if err := t.f.stopped(); err != nil {
		return nil, err
	}
	return t.Conn.Query(ctx, path, data)
}

// BlockEvents returns the chain events of the successful transactions of
// the committed block at height.
func (t *localTransport) BlockEvents(ctx context.Context, height int64) (chain.BlockEvents, error) {
	if err := t.f.stopped(); err != nil {
		return chain.BlockEvents{}, err
	}
	return t.Conn.BlockEvents(ctx, height)
}

// BroadcastTx submits tx to the node's mempool and waits for the block that
// commits it.
func (t *localTransport) BroadcastTx(ctx context.Context, tx []byte) (chain.Committed, error) {
	w, err := t.f.watch(tx)
	if err != nil {
		return chain.Committed{}, err
	}
	defer t.f.unwatch(w)
	if _, err := t.C.BroadcastTxSync(ctx, tx); err != nil {
		return chain.Committed{}, t.CheckTxError(ctx, tx, err)
	}
	t.f.admit(w)
	select {
	case r := <-w.ch:
		return r.c, r.err
	case <-ctx.Done():
		return chain.Committed{}, fmt.Errorf("waiting for tx %X to commit: %w", types.Tx(tx).Hash(), ctx.Err())
	}
}

// LatestHeight returns the height of the latest committed block.
func (t *localTransport) LatestHeight(context.Context) (int64, error) {
	if err := t.f.stopped(); err != nil {
		return 0, err
	}
	return t.f.latest(), nil
}

// WaitForHeight blocks until the block at height h is committed.
func (t *localTransport) WaitForHeight(ctx context.Context, h int64) error {
	return t.f.waitFor(ctx, h)
}

// Close does nothing: the node owns what the transport uses.
func (t *localTransport) Close() error { return nil }

// Dial returns a Transport to the node whose CometBFT RPC listens at rpcURL:
// rpc.Dial, kept here for the commands that run a node and dial another.
func Dial(rpcURL string) (chain.Transport, error) { return rpc.Dial(rpcURL) }
