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
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/testnet"
)

// TestGetFromProviderRestartedOnNewPort restarts a provider on a new port
// and gets at once, through a client that reads the chain as the CLI does:
// proven, a block behind the head, its download reads marked
// rpc.AcceptLag. The read names the provider's old address, which refuses
// the dial; the get reads the provider's bucket again after the next
// block and reaches it at its new one. First a chunk only the restarted
// provider holds, the other provider up (here the DHT, through the other
// provider, may also give the new address;
// TestGetReachesRestartedProviderForMissingChunk has no DHT), then the
// whole object with the other provider down (the get finds no provider at
// first: the case that failed with "connection refused").
func TestGetFromProviderRestartedOnNewPort(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(2))
	ctx := testCtx(t)
	data := randomBytes(t, 3*itChunk+77, 71)
	obj, err := net.UploadChunked(ctx, data, itChunk, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range net.Providers() {
		testnet.Wait(t, fmt.Sprintf("provider %d to hold the object", p.Index), func() bool { return p.Holds(obj.ID) })
	}
	tr, err := rpc.Prove(ctx, net.Chain.Transport(), "testnet", rpc.Trust{Genesis: net.Chain.GenesisFile()}, rpc.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(net.Provider(0).AddrInfo(), net.Provider(1).AddrInfo()), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := New(Config{Chain: chain.NewClient(tr), Key: net.Member, Host: h, StateDir: t.TempDir(), ChunkSize: itChunk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	get := func(what string) {
		t.Helper()
		var out bytes.Buffer
		if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil {
			t.Fatalf("get %s: %v", what, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("get %s returned other bytes", what)
		}
	}
	get("before any restart")

	restarted, other := net.Provider(0), net.Provider(1)
	restart := func() {
		t.Helper()
		old := restarted.AddrInfo().Addrs
		if err := restarted.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := restarted.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		for _, a := range restarted.AddrInfo().Addrs {
			if slices.ContainsFunc(old, a.Equal) {
				t.Fatalf("provider restarted on its old address %s", a)
			}
		}
	}

	restart()
	if err := other.Store().Delete(chunker.ChunkCID(data[itChunk : 2*itChunk])); err != nil {
		t.Fatal(err)
	}
	get("with a chunk only the restarted provider holds")

	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	restart()
	get("with the restarted provider the only one up")
	if got := h.Libp2p().Network().ConnsToPeer(restarted.AddrInfo().ID); len(got) == 0 {
		t.Fatal("the get succeeded without a connection to the restarted provider")
	}
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

// TestGetReachesRestartedProviderForMissingChunk restarts a provider on a
// new port while the client reads the chain a block behind: the provider
// is not reached at its old address, the other provider is, and the DHT
// knows neither. A chunk only the restarted provider holds finds no
// source; the download then reads the provider's bucket after the next
// block, reaches it at its new address once, and reads the chunk from it.
func TestGetReachesRestartedProviderForMissingChunk(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 4<<16+99, 72) // 5 chunks of 64 KiB
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data), WithRedundancy(2))
	if err != nil {
		t.Fatal(err)
	}
	kept, moved := net.providers[0], net.providers[1]
	missing := chunker.ChunkCID(data[2<<16 : 3<<16])
	kept.mu.Lock()
	_, held := kept.blocks[missing]
	delete(kept.blocks, missing)
	kept.mu.Unlock()
	if !held {
		t.Fatalf("provider 0 does not hold chunk %s", missing)
	}

	lag := &lagChain{fakeChain: net.chain, old: map[chain.StorageBucketID]chain.StorageBucket{}, reads: map[chain.StorageBucketID]int{}}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := p2p.New(hctx, p2p.WithIdentity(moved.key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := moved.host.Close(); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the client to see its connection to the old host closed", func() bool {
		return len(c.host.Libp2p().Network().ConnsToPeer(h.ID())) == 0
	})
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	net.chain.mu.Lock()
	b := net.chain.buckets[1]
	lag.old[1], lag.until = b, net.chain.height
	meta := *b.Metadata
	meta.Multiaddrs = addrs
	b.Metadata = &meta
	net.chain.buckets[1] = b
	net.chain.mu.Unlock()
	c.chain = lag

	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), &out); err != nil {
		t.Fatalf("get of a chunk only the restarted provider holds: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get returned other bytes")
	}
	if len(c.host.Libp2p().Network().ConnsToPeer(h.ID())) == 0 {
		t.Fatalf("the get succeeded without reaching the restarted provider (bucket reads %v, conns %v)", lag.reads, c.host.Libp2p().Network().Conns())
	}
	lag.mu.Lock()
	defer lag.mu.Unlock()
	if lag.reads[1] != 2 {
		t.Fatalf("the restarted provider's bucket read %d times, want 2 (once a block behind, once after the next block)", lag.reads[1])
	}
}
