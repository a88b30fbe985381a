package client

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/testnet"
)

// Providers restarted on a new port, and chains read a block behind, for
// the tests of reaching them (locate, reachbound, uploadmoved).

// provenClient is a client of net that reads the chain as the CLI does:
// proven, a block behind the head. Its host is a DHT client made with
// opts; both close when the test ends.
func provenClient(t *testing.T, net *testnet.Network, opts ...p2p.Option) (*Client, *p2p.Host) {
	t.Helper()
	ctx := testCtx(t)
	tr, err := rpc.Prove(ctx, net.Chain.Transport(), "testnet", rpc.Trust{Genesis: net.Chain.GenesisFile()}, rpc.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]p2p.Option{p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient), p2p.WithLogger(quietLog)}, opts...)
	h, err := p2p.New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := New(Config{Chain: chain.NewClient(tr), Key: net.Member, Host: h, StateDir: t.TempDir(), ChunkSize: itChunk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, h
}

// restartOnNewPort kills p and restarts it, and fails if it listens on any
// of its old addresses. It returns an error rather than failing the test,
// so that it can run on a goroutine the upload under test starts.
func restartOnNewPort(ctx context.Context, p *testnet.Provider) error {
	old := p.AddrInfo().Addrs
	if err := p.Kill(); err != nil {
		return err
	}
	if err := p.Restart(ctx); err != nil {
		return err
	}
	for _, a := range p.AddrInfo().Addrs {
		if slices.ContainsFunc(old, a.Equal) {
			return fmt.Errorf("provider restarted on its old address %s", a)
		}
	}
	return nil
}

// moveFake restarts fake provider i of net on a new port, as a restart
// does: its host closes (c sees its connection go), a host with its key
// listens on a new port, and the chain's bucket i names the new addresses.
// lag, when not nil, keeps reading the bucket as it was until the next
// block. It returns the new host.
func moveFake(ctx context.Context, net *fakeNet, c *Client, lag *lagChain, i int) (*p2p.Host, error) {
	p := net.providers[i]
	h, err := p2p.New(ctx, p2p.WithIdentity(p.key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
	if err != nil {
		return nil, err
	}
	net.t.Cleanup(func() { _ = h.Close() })
	if err := p.host.Close(); err != nil {
		return nil, err
	}
	for len(c.host.Libp2p().Network().ConnsToPeer(h.ID())) > 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the client kept its connection to the closed host: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	id := chain.StorageBucketID(i)
	net.chain.mu.Lock()
	b := net.chain.buckets[id]
	old, height := b, net.chain.height
	meta := *b.Metadata
	meta.Multiaddrs = addrs
	b.Metadata = &meta
	net.chain.buckets[id] = b
	net.chain.mu.Unlock()
	if lag != nil {
		lag.mu.Lock()
		lag.old[id], lag.until = old, height
		lag.mu.Unlock()
	}
	return h, nil
}

// movedProvider stores an object of 5 chunks of 64 KiB on two fake
// providers, deletes its third chunk from provider 0, and moves provider
// 1 to a new port. The returned chain names the new addresses, but read a
// block behind, as proven reads are: until its next block it names the old
// ones.
func movedProvider(t *testing.T, seed uint64) (*fakeNet, []byte, *lagChain, Object) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 4<<16+99, seed)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data), WithRedundancy(2))
	if err != nil {
		t.Fatal(err)
	}
	dropChunk(t, net.providers[0], data[2<<16:3<<16])
	lag := newLagChain(net.chain)
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := moveFake(hctx, net, c, lag, 1); err != nil {
		t.Fatal(err)
	}
	return net, data, lag, obj
}

// lagChain is a fake chain read a block behind, like proven reads: the
// buckets in old are seen as they were until the chain passes height
// until. Its transport makes the blocks waited for.
type lagChain struct {
	*fakeChain
	mu    sync.Mutex
	old   map[chain.StorageBucketID]chain.StorageBucket
	until int64
	reads map[chain.StorageBucketID]int
}

// newLagChain reads f a block behind for the buckets later put in old.
func newLagChain(f *fakeChain) *lagChain {
	return &lagChain{fakeChain: f, old: map[chain.StorageBucketID]chain.StorageBucket{}, reads: map[chain.StorageBucketID]int{}}
}

func (l *lagChain) StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	b, err := l.fakeChain.StorageBucket(ctx, id)
	h, _ := l.fakeChain.Transport().LatestHeight(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads[id]++
	if o, ok := l.old[id]; ok && h <= l.until {
		return o, nil
	}
	return b, err
}

func (l *lagChain) Transport() chain.Transport { return blockMaker{fakeTransport{l.fakeChain}} }

// blockMaker is a fake chain's transport whose waits for a height make
// the blocks up to it.
type blockMaker struct{ fakeTransport }

func (b blockMaker) WaitForHeight(ctx context.Context, h int64) error {
	b.f.mu.Lock()
	for b.f.height < h {
		b.f.tick()
	}
	b.f.mu.Unlock()
	return b.fakeTransport.WaitForHeight(ctx, h)
}
