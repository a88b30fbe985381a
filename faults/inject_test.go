package faults

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chain"
)

// chainMode is what a faultyChain does.
type chainMode int32

const (
	chainOK    chainMode = iota
	chainDown            // every call fails: the provider is cut off from the chain
	chainLying           // an endpoint stuck at an old height: objects answer not found, the height stays
)

var errPartitioned = errors.New("faults: chain unreachable (injected partition)")

// faultyChain is a chain transport that can be cut off or made to lie.
type faultyChain struct {
	chain.Transport
	mode  atomic.Int32
	stale atomic.Int64 // the height a lying transport reports
}

// set switches to mode m; chainLying is lie's.
func (f *faultyChain) set(m chainMode) { f.mode.Store(int32(m)) }

// lie makes the transport an endpoint stuck at height stale: every read of
// objects answers none, and each read of the height — the node's info, the
// latest height, the blocks it may follow — says stale.
func (f *faultyChain) lie(stale int64) {
	f.stale.Store(stale)
	f.mode.Store(int32(chainLying))
}

func (f *faultyChain) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	switch chainMode(f.mode.Load()) {
	case chainDown:
		return nil, errPartitioned
	case chainLying:
		switch path {
		case chain.QueryObjects:
			return []byte("[]"), nil
		case chain.QueryObjectsPage:
			return json.Marshal(chain.Page[chain.DataObject]{Items: []chain.DataObject{}})
		case chain.QueryObject, chain.QueryObjectByID:
			return nil, chain.ErrNotFound
		case chain.QueryInfo:
			return f.staleInfo(ctx, data)
		}
	}
	return f.Transport.Query(ctx, path, data)
}

// staleInfo is the node's info as an endpoint stuck at the stale height
// gives it.
func (f *faultyChain) staleInfo(ctx context.Context, data []byte) ([]byte, error) {
	b, err := f.Transport.Query(ctx, chain.QueryInfo, data)
	if err != nil {
		return nil, err
	}
	var info chain.NodeInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	info.Height = f.stale.Load()
	return json.Marshal(info)
}

func (f *faultyChain) BroadcastTx(ctx context.Context, tx []byte) (chain.Committed, error) {
	if chainMode(f.mode.Load()) == chainDown {
		return chain.Committed{}, errPartitioned
	}
	return f.Transport.BroadcastTx(ctx, tx)
}

func (f *faultyChain) BlockEvents(ctx context.Context, h int64) (chain.BlockEvents, error) {
	switch chainMode(f.mode.Load()) {
	case chainDown:
		return chain.BlockEvents{}, errPartitioned
	case chainLying:
		if h > f.stale.Load() {
			return chain.BlockEvents{}, errPartitioned
		}
	}
	return f.Transport.BlockEvents(ctx, h)
}

func (f *faultyChain) LatestHeight(ctx context.Context) (int64, error) {
	switch chainMode(f.mode.Load()) {
	case chainDown:
		return 0, errPartitioned
	case chainLying:
		return f.stale.Load(), nil
	}
	return f.Transport.LatestHeight(ctx)
}

func (f *faultyChain) WaitForHeight(ctx context.Context, h int64) error {
	switch chainMode(f.mode.Load()) {
	case chainDown:
		return errPartitioned
	case chainLying:
		if h > f.stale.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
	}
	return f.Transport.WaitForHeight(ctx, h)
}

// Close leaves the node's transport open: the network closes it.
func (f *faultyChain) Close() error { return nil }

// gate is a connection gater that, while cut, refuses every connection in
// or out: a network partition around one host.
type gate struct{ cut atomic.Bool }

func (g *gate) InterceptPeerDial(peer.ID) bool               { return !g.cut.Load() }
func (g *gate) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return !g.cut.Load() }
func (g *gate) InterceptAccept(network.ConnMultiaddrs) bool  { return !g.cut.Load() }
func (g *gate) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return !g.cut.Load()
}
func (g *gate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return !g.cut.Load(), 0
}
