package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
)

// TestGetFailsOnHaltedChain closes one provider and takes from the other
// a chunk only the closed one held, on a chain that makes no block (the
// fake chain makes none on its own): the get looks the closed provider up
// again after the next block, which never comes, and must fail, saying it
// could not connect and that the chain made no new block, rather than wait
// for the block for as long as its caller's context (`satchel get` has no
// deadline).
func TestGetFailsOnHaltedChain(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 4<<16+99, 73)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data), WithRedundancy(2))
	if err != nil {
		t.Fatal(err)
	}
	dropChunk(t, net.providers[0], data[2<<16:3<<16])
	if err := net.providers[1].host.Close(); err != nil {
		t.Fatal(err)
	}
	c = net.client("", WithLocateTimeout(2*time.Second))
	_, err = c.Get(ctx, ObjectRef(net.bag, obj.ID), io.Discard)
	checkHaltedError(t, ctx, err)
}

// TestOpenFailsOnHaltedChain closes every provider: Open reaches none, and
// looks them up again after the next block, which a halted chain never
// makes. It must fail saying so.
func TestOpenFailsOnHaltedChain(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 3<<16, 75)), WithRedundancy(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range net.providers {
		if err := p.host.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c = net.client("", WithLocateTimeout(2*time.Second))
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err == nil {
		r.Close()
	}
	checkHaltedError(t, ctx, err)
}

// checkHaltedError checks that err is the failure of a download whose
// providers could not be connected to, on a chain that made no new block.
func checkHaltedError(t *testing.T, ctx context.Context, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("download succeeded without a reachable provider holding the data")
	}
	if ctx.Err() != nil {
		t.Fatalf("download ended only with the test's deadline: %v", err)
	}
	var npe *NoProviderError
	if !errors.As(err, &npe) || !errors.Is(err, errNoNewBlock) || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("want a NoProviderError saying a provider could not be connected to and the chain made no new block; got %v", err)
	}
	t.Logf("failed as it should: %v", err)
}

// TestReachMoreRacesProgress reads from one Reader at once a chunk no
// reached provider holds (which looks the others up again and adds a
// source) and other chunks (whose progress counts the sources): under
// -race, the count must not race the addition.
func TestReachMoreRacesProgress(t *testing.T) {
	net, data, lag, obj := movedProvider(t, 74)
	c := net.client("")
	c.chain = lag
	ctx := testCtx(t)
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 100)
		offs := []int64{0, 1<<16 + 5, 3<<16 + 7, 4<<16 + 1}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = r.ReadAt(buf, offs[i%len(offs)])
		}
	})
	buf := make([]byte, 1<<16)
	if _, err := r.ReadAt(buf, 2<<16); err != nil {
		t.Errorf("read of the chunk only the moved provider holds: %v", err)
	} else if !bytes.Equal(buf, data[2<<16:3<<16]) {
		t.Error("read of the chunk only the moved provider holds returned other bytes")
	}
	close(stop)
	wg.Wait()
}

// TestCalledOffReadLeavesLookupForLater calls off a read while it waits
// for the block after which it would look the moved provider up again:
// the look-up is not spent, and a later read of the chunk does it, once
// the chain makes blocks, and reads the chunk from the moved provider.
func TestCalledOffReadLeavesLookupForLater(t *testing.T) {
	net, data, lag, obj := movedProvider(t, 76)
	gate := &gateChain{lagChain: lag, waits: make(chan struct{}, 1)}
	c := net.client("")
	c.chain = gate
	ctx := testCtx(t)
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.WriteRange(wctx, io.Discard, 2<<16, 1<<16)
		done <- err
	}()
	select {
	case <-gate.waits:
	case err := <-done:
		t.Fatalf("read ended before waiting for a block: %v", err)
	case <-ctx.Done():
		t.Fatal("the read never waited for a block")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("called-off read: got %v, want context.Canceled", err)
	}
	gate.open.Store(true)
	buf := make([]byte, 1<<16)
	if _, err := r.ReadAt(buf, 2<<16); err != nil {
		t.Fatalf("read after the called-off one: %v", err)
	}
	if !bytes.Equal(buf, data[2<<16:3<<16]) {
		t.Fatal("read after the called-off one returned other bytes")
	}
}

// gateChain is a lagChain whose transport reports each wait for a block
// on waits and, until open is set, makes no block (a halted chain).
type gateChain struct {
	*lagChain
	waits chan struct{}
	open  atomic.Bool
}

func (g *gateChain) Transport() chain.Transport {
	return gateTransport{blockMaker{fakeTransport{g.fakeChain}}, g}
}

type gateTransport struct {
	blockMaker
	g *gateChain
}

func (t gateTransport) WaitForHeight(ctx context.Context, h int64) error {
	if t.g.open.Load() {
		return t.blockMaker.WaitForHeight(ctx, h)
	}
	select {
	case t.g.waits <- struct{}{}:
	default:
	}
	return t.fakeTransport.WaitForHeight(ctx, h)
}

// dropChunk deletes the chunk of chunkData from p.
func dropChunk(t *testing.T, p *fakeProvider, chunkData []byte) {
	t.Helper()
	c := chunker.ChunkCID(chunkData)
	p.mu.Lock()
	_, held := p.blocks[c]
	delete(p.blocks, c)
	p.mu.Unlock()
	if !held {
		t.Fatalf("provider does not hold chunk %s", c)
	}
}

// TestUploadShortOfOperatorsOnHaltedChain: an upload short of providers
// because a bucket named no operator waits for the next block before it
// reads that bucket again; on a chain that makes no block the wait ends
// with the locate timeout and the upload goes on (here: the fresh read
// names the operator) instead of waiting as long as its caller's context.
func TestUploadShortOfOperatorsOnHaltedChain(t *testing.T) {
	net := newFakeNet(t, 3)
	c := net.client("", WithLocateTimeout(2*time.Second))
	ctx := testCtx(t)
	net.chain.mu.Lock()
	net.chain.unpublished[2] = 2 // the lagged read and the fresh one name none
	net.chain.mu.Unlock()
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 200<<10, 5)), WithMinRedundancy(3))
	if ctx.Err() != nil {
		t.Fatalf("the upload waited for a block until the test's deadline: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Providers) != 3 {
		t.Fatalf("stored on %v; want all three (the third named by the read after the wait)", obj.Providers)
	}
}
