package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// blockChain is a fake chain whose transport makes the blocks waited for.
type blockChain struct{ *fakeChain }

func (b blockChain) Transport() chain.Transport { return blockMaker{fakeTransport{b.fakeChain}} }

// dialling makes c's store streams to the fake providers need a
// connection, as real ones do: opening one dials the peer at the
// addresses the peerstore holds.
func dialling(c *Client) {
	open := c.openConn
	c.openConn = func(ctx context.Context, id peer.ID) (storeConn, error) {
		if err := c.host.Libp2p().Connect(ctx, peer.AddrInfo{ID: id}); err != nil {
			return nil, err
		}
		return open(ctx, id)
	}
}

// TestUploadReachesProviderRestartedOnNewPortFake restarts a provider on
// a new port while the client reads the chain a block behind, and puts to
// both providers at once: the provider is not reached at its old address,
// and the DHT knows nothing. The upload reads its bucket again after the
// next block and stores on it at its new address; the other bucket is
// not read again.
func TestUploadReachesProviderRestartedOnNewPortFake(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	lag := newLagChain(net.chain)
	h, err := moveFake(ctx, net, c, lag, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.chain = lag
	data := randomBytes(t, 3<<16+5, 81)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put with a provider restarted on a new port: %v", err)
	}
	if len(obj.Providers) != 2 || !slices.Contains(obj.Providers, h.ID()) {
		t.Fatalf("stored on %v; want both providers", obj.Providers)
	}
	if len(h.Libp2p().Network().ConnsToPeer(c.host.ID())) == 0 {
		t.Fatal("the put succeeded without reaching the restarted provider's new host")
	}
	lag.mu.Lock()
	defer lag.mu.Unlock()
	if lag.reads[0] != 1 || lag.reads[1] != 2 {
		t.Fatalf("bucket reads %v; want bucket 0 read once, bucket 1 twice (once a block behind, once after the next block)", lag.reads)
	}
}

// TestUploadRedialsProviderRestartedMidUploadFake restarts a provider on a
// new port in the middle of a put that needs it (N is every provider):
// its stream breaks before it stores chunk 2, and its old address refuses
// the dials. The uploader reads its bucket again after the next block and
// dials the new address: the put completes on both providers (without,
// the provider is given up after the reconnect wait, and the put fails).
func TestUploadRedialsProviderRestartedMidUploadFake(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("", WithReconnectWait(20*time.Second))
	dialling(c)
	ctx := testCtx(t)
	lag := newLagChain(net.chain)
	c.chain = lag
	moved := net.providers[1]
	var once sync.Once
	var h *p2p.Host
	var moveErr error
	moved.mu.Lock()
	moved.hook = func(ch store.ChunkPush) error {
		if ch.Index != 2 {
			return nil
		}
		err := error(nil)
		once.Do(func() {
			h, moveErr = moveFake(ctx, net, c, lag, 1)
			err = fmt.Errorf("provider restarted: %w", network.ErrReset)
		})
		return err
	}
	moved.mu.Unlock()
	data := randomBytes(t, 6<<16+5, 82)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if moveErr != nil {
		t.Fatalf("restart the provider: %v", moveErr)
	}
	if err != nil {
		t.Fatalf("put with a provider restarted mid-upload: %v", err)
	}
	if h == nil {
		t.Fatal("the provider was never pushed chunk 2, so never restarted")
	}
	if len(obj.Providers) != 2 || !slices.Contains(obj.Providers, h.ID()) {
		t.Fatalf("stored on %v; want both providers", obj.Providers)
	}
	if len(h.Libp2p().Network().ConnsToPeer(c.host.ID())) == 0 {
		t.Fatal("the put succeeded without reaching the restarted provider's new host")
	}
}

// restartingConn runs hook before every push on a store stream.
type restartingConn struct {
	storeConn
	hook func(store.ChunkPush)
}

func (c restartingConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	c.hook(ch)
	return c.storeConn.Push(ctx, ch)
}

func (c restartingConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	c.hook(ch)
	return c.storeConn.PushPipeline(ctx, ch)
}

// TestPutToProviderRestartedOnNewPort restarts a provider on a new port
// during a put, then before one, through a client that reads the chain as
// the CLI does: proven, a block behind the head, its upload's reads of
// whom to send to marked rpc.AcceptLag. The provider's old address refuses
// the dials, and each put needs the provider (N is every provider up, so
// no spare stands in). First the provider restarts as its stream is about
// to carry a chunk (pushed directly, then heading a pipeline): the
// uploader's dials of its old address fail, until a read of its bucket
// after a block names the new one. Then, the other
// provider down, it restarts and a put to it begins at once: the read a
// block old names its old address, the DHT knows no live peer, and the
// put reads the bucket again after the next block. Each object is then
// read back whole.
func TestPutToProviderRestartedOnNewPort(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(2))
	ctx := testCtx(t)
	c, _ := provenClient(t, net)
	restarted, other := net.Provider(0), net.Provider(1)
	id := restarted.AddrInfo().ID
	restart := func() error { return restartOnNewPort(ctx, restarted) }
	putGet := func(what string, data []byte, opts ...PutOption) {
		t.Helper()
		obj, err := c.Put(ctx, net.Bag, bytes.NewReader(data), opts...)
		if err != nil {
			t.Fatalf("put %s: %v", what, err)
		}
		if !slices.Contains(obj.Providers, id) {
			t.Fatalf("put %s stored on %v, not on the restarted provider %s", what, obj.Providers, id)
		}
		var out bytes.Buffer
		if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil {
			t.Fatalf("get what was put %s: %v", what, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("get what was put %s returned other bytes", what)
		}
	}

	open := c.openConn
	for i, r := range []Replication{ReplicateDirect, ReplicatePipelined} {
		var once sync.Once
		restartErr := errors.New("the provider was never pushed a chunk after the first")
		c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
			conn, err := open(ctx, p)
			if err != nil || p != id {
				return conn, err
			}
			return restartingConn{conn, func(ch store.ChunkPush) {
				if ch.Index >= 1 {
					once.Do(func() { restartErr = restart() })
				}
			}}, nil
		}
		what := fmt.Sprintf("while the provider restarts (%s)", r)
		putGet(what, randomBytes(t, 4*itChunk+33, 83+uint64(i)), WithReplication(r))
		if restartErr != nil {
			t.Fatalf("restart %s: %v", what, restartErr)
		}
	}
	c.openConn = open

	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := restart(); err != nil {
		t.Fatal(err)
	}
	putGet("at once to the restarted provider, the only one up", randomBytes(t, 2*itChunk+9, 85), WithRedundancy(1))
}
