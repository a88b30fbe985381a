package client

import (
	"bytes"
	"fmt"
	"testing"

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
	c, h := provenClient(t, net, p2p.WithBootstrap(net.Provider(0).AddrInfo(), net.Provider(1).AddrInfo()))
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
		if err := restartOnNewPort(ctx, restarted); err != nil {
			t.Fatal(err)
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

// TestGetReachesRestartedProviderForMissingChunk restarts a provider on a
// new port while the client reads the chain a block behind: the provider
// is not reached at its old address, the other provider is, and the DHT
// knows neither. A chunk only the restarted provider holds finds no
// source; the download then reads the provider's bucket after the next
// block, reaches it at its new address once, and reads the chunk from it.
func TestGetReachesRestartedProviderForMissingChunk(t *testing.T) {
	net, data, lag, obj := movedProvider(t, 72)
	c := net.client("")
	c.chain = lag
	ctx := testCtx(t)
	moved := net.providers[1].id()

	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), &out); err != nil {
		t.Fatalf("get of a chunk only the restarted provider holds: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get returned other bytes")
	}
	if len(c.host.Libp2p().Network().ConnsToPeer(moved)) == 0 {
		t.Fatalf("the get succeeded without reaching the restarted provider (bucket reads %v, conns %v)", lag.reads, c.host.Libp2p().Network().Conns())
	}
	lag.mu.Lock()
	defer lag.mu.Unlock()
	if lag.reads[1] != 2 {
		t.Fatalf("the restarted provider's bucket read %d times, want 2 (once a block behind, once after the next block)", lag.reads[1])
	}
}
