package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	"github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
)

// PollInterval is how often a remote Transport asks its node whether a
// submitted transaction is committed or a height is reached. It is a quarter
// of the default block interval, so a remote client sees a commit about as
// soon as a local one.
const PollInterval = 25 * time.Millisecond

// ErrDuplicateTx is returned by BroadcastTx for transaction bytes the node
// has already seen (pending or recently committed). Sign the message again
// with a new nonce to resubmit it.
var ErrDuplicateTx = errors.New("transaction already submitted to the chain node")

// ErrCatchingUp is returned by BroadcastTx while the node is still catching
// up with the network (block sync): it accepts transactions once it has.
// Retry later, or submit through another node.
var ErrCatchingUp = errors.New("chain node is catching up with the network and accepts no transactions yet")

// The texts of CometBFT's mempool.ErrTxInCache and
// rpc/core.ErrEndpointClosedCatchingUp, matched rather than imported: those
// packages belong to the node.
const (
	txInCacheMsg  = "tx already exists in cache"
	catchingUpMsg = "endpoint is closed while node is catching up"
)

// Conn holds what the local and remote transports share: reads over
// CometBFT's RPC interface (the in-process Local client or HTTP).
type Conn struct {
	// C is the RPC client.
	C rpcclient.Client
	// InvalidTx, when set, extracts the application's rejection from a
	// BroadcastTxSync error of an in-process client (whose error types the
	// remote client never sees).
	InvalidTx func(err error) (code uint32, log string, ok bool)
}

// Query runs an application query at the latest committed state; a runtime
// error comes back as its chain error (errors.Is with chain sentinels works).
func (t Conn) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	res, err := t.C.ABCIQuery(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != chain.CodeOK {
		return nil, chain.ErrorFromCode(res.Response.Code, res.Response.Log)
	}
	return res.Response.Value, nil
}

// BlockEvents returns the chain events of the successful transactions of the
// committed block at height, then the block's own events.
func (t Conn) BlockEvents(ctx context.Context, height int64) (chain.BlockEvents, error) {
	res, err := t.C.BlockResults(ctx, &height)
	if err != nil {
		return chain.BlockEvents{}, fmt.Errorf("block %d results: %w", height, err)
	}
	hdr, err := t.C.Header(ctx, &height)
	if err != nil {
		return chain.BlockEvents{}, fmt.Errorf("block %d header: %w", height, err)
	}
	be := chain.BlockEvents{Height: height, Events: []chain.Event{}}
	if hdr.Header != nil {
		be.Time = hdr.Header.Time
	}
	for i, r := range res.TxResults {
		if r.Code != chain.CodeOK {
			continue
		}
		evs, err := DecodeEvents(r.Events)
		if err != nil {
			return chain.BlockEvents{}, fmt.Errorf("block %d tx %d: %w", height, i, err)
		}
		be.Events = append(be.Events, evs...)
	}
	// Then the block's own events (pending objects expiring).
	evs, err := DecodeEvents(res.FinalizeBlockEvents)
	if err != nil {
		return chain.BlockEvents{}, fmt.Errorf("block %d events: %w", height, err)
	}
	be.Events = append(be.Events, evs...)
	return be, nil
}

// CommittedHeight is the height the application has committed, read through
// ABCI Info: unlike the block store's height it never runs ahead of the
// block's results and state.
func (t Conn) CommittedHeight(ctx context.Context) (int64, error) {
	res, err := t.C.ABCIInfo(ctx)
	if err != nil {
		return 0, fmt.Errorf("abci info: %w", err)
	}
	return res.Response.LastBlockHeight, nil
}

// CheckTxError turns a BroadcastTxSync failure into the chain's error when
// the application rejected the transaction; other failures (mempool full,
// duplicate transaction, node catching up) are wrapped as they are.
func (t Conn) CheckTxError(ctx context.Context, tx []byte, err error) error {
	if t.InvalidTx != nil {
		if code, log, ok := t.InvalidTx(err); ok {
			return chain.ErrorFromCode(code, log)
		}
	}
	// CometBFT's errors arrive as text over HTTP; match their messages (the
	// in-process client's error values carry the same text).
	if strings.Contains(err.Error(), txInCacheMsg) {
		return ErrDuplicateTx
	}
	if strings.Contains(err.Error(), catchingUpMsg) {
		return ErrCatchingUp
	}
	if !strings.Contains(err.Error(), "is invalid: code=") {
		return fmt.Errorf("broadcast tx: %w", err)
	}
	// A remote node reports the rejection as text only: ask it again for the
	// code and message, read-only.
	res, cerr := t.C.CheckTx(ctx, tx)
	if cerr == nil && res.Code != chain.CodeOK {
		return chain.ErrorFromCode(res.Code, res.Log)
	}
	return fmt.Errorf("broadcast tx: %w", err)
}

// remote is a Transport over a node's HTTP RPC.
type remote struct {
	Conn
	hc *http.Client
}

var _ chain.Transport = (*remote)(nil)

// Dial returns a Transport to the node whose CometBFT RPC listens at rpcURL
// (e.g. "http://127.0.0.1:26657"; a bare host:port means http). It connects
// lazily: an unreachable node shows up as the error of the first call.
//
// The remote transport polls the node's committed height every
// PollInterval: WaitForHeight until the height is reached, BroadcastTx
// until a new block holds the transaction. It needs no transaction index.
// Unlike the in-process transport it cannot see the node's mempool: a
// transaction the node drops after CheckTx is waited for until ctx ends.
func Dial(rpcURL string) (chain.Transport, error) {
	c, hc, err := DialHTTP(rpcURL)
	if err != nil {
		return nil, err
	}
	return &remote{Conn: Conn{C: c}, hc: hc}, nil
}

// DialHTTP returns CometBFT's HTTP RPC client of the node at rpcURL (a bare
// host:port means http) and the HTTP client under it.
func DialHTTP(rpcURL string) (*rpchttp.HTTP, *http.Client, error) {
	if rpcURL == "" {
		return nil, nil, errors.New("dial chain node: no RPC address (set chain.rpc, e.g. http://127.0.0.1:26657)")
	}
	if !strings.Contains(rpcURL, "://") {
		rpcURL = "http://" + rpcURL
	}
	hc, err := jsonrpcclient.DefaultHTTPClient(rpcURL)
	if err != nil {
		return nil, nil, fmt.Errorf("dial chain node %s: %w", rpcURL, err)
	}
	c, err := rpchttp.NewWithClient(rpcURL, hc)
	if err != nil {
		return nil, nil, fmt.Errorf("dial chain node %s: %w", rpcURL, err)
	}
	return c, hc, nil
}

// BroadcastTx submits tx and follows the committed blocks until one holds
// it. The transaction cannot be in a block committed before it was
// submitted, so the search starts at the height committed before.
func (t *remote) BroadcastTx(ctx context.Context, tx []byte) (chain.Committed, error) {
	next, err := t.CommittedHeight(ctx)
	if err != nil {
		return chain.Committed{}, err
	}
	next++
	if _, err := t.C.BroadcastTxSync(ctx, tx); err != nil {
		return chain.Committed{}, t.CheckTxError(ctx, tx, err)
	}
	hash := types.Tx(tx).Hash()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		latest, err := t.CommittedHeight(ctx)
		if err != nil {
			return chain.Committed{}, fmt.Errorf("waiting for tx %X to commit: %w", hash, err)
		}
		for ; next <= latest; next++ {
			c, found, err := t.findTx(ctx, next, hash)
			if err != nil {
				return chain.Committed{}, fmt.Errorf("waiting for tx %X to commit: %w", hash, err)
			}
			if found {
				return c, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return chain.Committed{}, fmt.Errorf("waiting for tx %X to commit: %w", hash, ctx.Err())
		}
	}
}

// findTx looks for the transaction with hash in the block at height.
func (t *remote) findTx(ctx context.Context, height int64, hash []byte) (chain.Committed, bool, error) {
	blk, err := t.C.Block(ctx, &height)
	if err != nil {
		return chain.Committed{}, false, fmt.Errorf("block %d: %w", height, err)
	}
	for i, tx := range blk.Block.Txs {
		if !bytes.Equal(tx.Hash(), hash) {
			continue
		}
		res, err := t.C.BlockResults(ctx, &height)
		if err != nil {
			return chain.Committed{}, false, fmt.Errorf("block %d results: %w", height, err)
		}
		if i >= len(res.TxResults) {
			return chain.Committed{}, false, fmt.Errorf("block %d has no result for tx %d", height, i)
		}
		r, err := TxResult(res.TxResults[i])
		if err != nil {
			return chain.Committed{}, false, fmt.Errorf("block %d tx %d: %w", height, i, err)
		}
		return chain.Committed{Height: height, TxHash: hash, Result: r}, true, nil
	}
	return chain.Committed{}, false, nil
}

// LatestHeight returns the height of the latest committed block.
func (t *remote) LatestHeight(ctx context.Context) (int64, error) { return t.CommittedHeight(ctx) }

// WaitForHeight polls the node until the block at height h is committed.
func (t *remote) WaitForHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		got, err := t.CommittedHeight(ctx)
		if err != nil {
			return err
		}
		if got >= h {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for height %d (at %d): %w", h, got, ctx.Err())
		}
	}
}

// Close releases idle HTTP connections.
func (t *remote) Close() error {
	t.hc.CloseIdleConnections()
	return nil
}
