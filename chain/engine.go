package chain

import (
	"context"
	"time"
)

// This file is the contract between the data directory's state machine
// (package chain/state) and the consensus engine that drives it (package
// chain/node). Neither side depends on the other's internals.

// BlockInfo identifies the block a transaction executes in. Hash seeds the
// deterministic placement of new dynamic bags.
type BlockInfo struct {
	Height int64
	Time   time.Time
	Hash   []byte
}

// TxResult is the outcome of one transaction in a block. Code 0 is success;
// any other code is a stable runtime error code (see errors.go) and the
// transaction changed nothing but its signer's nonce (so its bytes cannot be
// replayed later, when state might let them succeed).
type TxResult struct {
	Code   uint32  `json:"code"`
	Log    string  `json:"log,omitempty"`
	Events []Event `json:"events,omitempty"`
}

// Machine is the deterministic data directory that the consensus engine
// drives block by block. Implementations persist their own state and resume
// from it: Info reports the last committed height so the engine replays only
// what is missing.
type Machine interface {
	// Info returns the last committed height and app hash (0, nil when new).
	Info() (height int64, appHash []byte, err error)
	// InitChain loads the genesis state and returns the initial app hash.
	InitChain(g Genesis, genesisTime time.Time) (appHash []byte, err error)
	// CheckTx validates a transaction for the mempool (decoding, signature,
	// nonce) against the last committed state, changing nothing.
	CheckTx(tx []byte) error
	// FinalizeBlock executes the block's transactions in order. A failing
	// transaction yields a non-zero code and leaves state untouched; the block
	// still succeeds. The returned app hash covers the block's changes.
	FinalizeBlock(b BlockInfo, txs [][]byte) (results []TxResult, appHash []byte, err error)
	// Commit makes the state finalized by the last FinalizeBlock durable.
	Commit() error
	// Query answers a read at the last committed state; paths are listed in
	// query.go.
	Query(path string, data []byte) ([]byte, error)
	// Close releases the machine's storage.
	Close() error
}

// EndBlocker is implemented by a Machine whose blocks change state outside
// any transaction: pending data objects expiring at the block's height, an
// app version upgrade at the end of its block (AppVersionUpgraded).
// After FinalizeBlock, the engine asks for the events of those changes and
// publishes them as the block's own events (in CometBFT, the
// FinalizeBlock response's events), after the transactions' events.
type EndBlocker interface {
	// EndBlockEvents returns the events of the block last finalized,
	// outside its transactions (nil when none).
	EndBlockEvents() []Event
}

// Committed is a transaction included in a block.
type Committed struct {
	Height int64    `json:"height"`
	TxHash []byte   `json:"txHash"`
	Result TxResult `json:"result"`
}

// BlockEvents are the events of every successful transaction of one
// committed block, in order, followed by the block's own events (see
// EndBlocker).
type BlockEvents struct {
	Height int64     `json:"height"`
	Time   time.Time `json:"time"`
	Events []Event   `json:"events"`
}

// Transport is how a Client reaches a node: in process or over CometBFT RPC.
// It moves bytes; Client gives them types.
type Transport interface {
	// Query runs an application query at the latest committed state.
	Query(ctx context.Context, path string, data []byte) ([]byte, error)
	// BroadcastTx submits signed transaction bytes and waits until they are
	// committed in a block (or rejected by CheckTx, returned as an error).
	BroadcastTx(ctx context.Context, tx []byte) (Committed, error)
	// BlockEvents returns the events of the committed block at height.
	BlockEvents(ctx context.Context, height int64) (BlockEvents, error)
	// LatestHeight returns the height of the latest committed block.
	LatestHeight(ctx context.Context) (int64, error)
	// WaitForHeight blocks until a block at height h or above is committed.
	WaitForHeight(ctx context.Context, h int64) error
	// Close releases the transport (not the node behind it).
	Close() error
}
