package rpc_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/verify"
)

// counting is a node's transport counting its waits for a height not
// reached yet (each a poll of the node until it is) and the reads of its
// head.
type counting struct {
	chain.Transport
	verify.Source
	waits, heads atomic.Int64
}

func (c *counting) WaitForHeight(ctx context.Context, h int64) error {
	if now, err := c.Transport.LatestHeight(ctx); err == nil && now < h {
		c.waits.Add(1)
	}
	return c.Transport.WaitForHeight(ctx, h)
}

func (c *counting) LatestHeight(ctx context.Context) (int64, error) {
	c.heads.Add(1)
	return c.Transport.LatestHeight(ctx)
}

// Concurrent proven reads that find nothing all wait for the next block,
// through one poll of the node, not one each.
func TestProvenMissesShareTheWaitForTheNextBlock(t *testing.T) {
	lead := testKey("lead")
	ctx := testCtx(t)
	n := startIdleNode(t, ctx, lead)
	res, err := chain.NewClient(n.Transport()).Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Transport().WaitForHeight(ctx, res.Height+1); err != nil {
		t.Fatal(err)
	}
	ct := &counting{Transport: n.Transport(), Source: n.Transport().(verify.Source)}
	pt, err := rpc.Prove(ctx, ct, "node", rpc.Trust{Genesis: n.GenesisFile()}, rpc.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	c := chain.NewClient(pt)
	// The chain idles: each miss waits for a block that only the
	// transaction below makes.
	const readers = 20
	heads, waits := ct.heads.Load(), ct.waits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			_, err := c.Member(rpc.AcceptLag(ctx), chain.MemberID(1000+i))
			errs <- err
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for ct.heads.Load()-heads < readers { // each miss reads the head, then waits
		if time.Now().After(deadline) {
			t.Fatal("the readers never missed")
		}
		time.Sleep(5 * time.Millisecond) // polling a counter with a deadline
	}
	if _, err := chain.NewClient(n.Transport()).Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, chain.ErrNotFound) {
			t.Fatalf("a read of a missing member = %v; want not found", err)
		}
	}
	if got := ct.waits.Load() - waits; got != 1 {
		t.Fatalf("%d concurrent misses polled the node for the next block %d times; want once", readers, got)
	}
}
