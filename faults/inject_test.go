package faults

import (
	"context"
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
	chainLying           // objects answer not found and the height stays where it was
)

var errPartitioned = errors.New("faults: chain unreachable (injected partition)")

// faultyChain is a chain transport that can be cut off or made to lie.
type faultyChain struct {
	chain.Transport
	mode  atomic.Int32
	stale atomic.Int64 // the height a lying transport reports
}

func (f *faultyChain) set(ctx context.Context, m chainMode) {
	if m == chainLying {
		h, _ := f.Transport.LatestHeight(ctx)
		f.stale.Store(h)
	}
	f.mode.Store(int32(m))
}

func (f *faultyChain) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	switch chainMode(f.mode.Load()) {
	case chainDown:
		return nil, errPartitioned
	case chainLying:
		switch path {
		case chain.QueryObjects:
			return []byte("[]"), nil
		case chain.QueryObject:
			return nil, chain.ErrNotFound
		}
	}
	return f.Transport.Query(ctx, path, data)
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
