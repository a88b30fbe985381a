package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/testnet"
)

// countingChain is a network's chain client that counts the reads an
// object lookup makes. With indexErr its object-ID index answers that
// error for every object: plain ErrNotFound, as a chain started before the
// index does for the objects registered then (a state this code cannot
// make), or another error, as a node older than the query does.
type countingChain struct {
	*chain.Client
	indexErr                 error
	byID, bags, objectsInBag atomic.Int32
}

func (c *countingChain) ObjectByID(ctx context.Context, id chain.ObjectID) (chain.DataObject, error) {
	c.byID.Add(1)
	if c.indexErr != nil {
		return chain.DataObject{}, c.indexErr
	}
	return c.Client.ObjectByID(ctx, id)
}

func (c *countingChain) Bags(ctx context.Context) ([]chain.Bag, error) {
	c.bags.Add(1)
	return c.Client.Bags(ctx)
}

func (c *countingChain) DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	c.objectsInBag.Add(1)
	return c.Client.DataObject(ctx, bag, id)
}

func (c *countingChain) counts() [3]int32 {
	return [3]int32{c.byID.Load(), c.bags.Load(), c.objectsInBag.Load()}
}

// chainClient returns a client of net that reads the chain through ch.
func chainClient(t *testing.T, net *testnet.Network, ch Chain) *Client {
	t.Helper()
	var boot []peer.AddrInfo
	for _, p := range net.Providers() {
		boot = append(boot, p.AddrInfo())
	}
	h, err := p2p.New(testCtx(t), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(boot...), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := New(Config{Chain: ch, Key: net.Member, Host: h, StateDir: t.TempDir(), ChunkSize: itChunk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestGetWithoutBagReadsTheObjectIndex: an object named by ID alone is
// found in one read of the chain's object-ID index, not a read per bag,
// and an ID no object has is ErrObjectNotFound from that read alone; where
// the index cannot answer (a chain started before it, a node older than
// the query) every bag is searched as before.
func TestGetWithoutBagReadsTheObjectIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(1))
	ctx := testCtx(t)
	data := randomBytes(t, 40<<10, 21)
	obj, err := chainClient(t, net, net.Client).Put(ctx, net.Bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	scanned := func(c [3]int32) bool { return c[0] == 1 && c[1] == 1 && c[2] >= 1 }
	for _, tc := range []struct {
		name     string
		indexErr error
		// want and wantUnknown check the ObjectByID, Bags and DataObject
		// calls of the get and of the get of an unknown ID after it.
		want, wantUnknown func(c [3]int32) bool
	}{
		{"index", nil, func(c [3]int32) bool { return c == [3]int32{1, 0, 0} },
			func(c [3]int32) bool { return c == [3]int32{2, 0, 0} }},
		{"chain started before the index", chain.Errorf(chain.ErrNotFound, "not in the index"), scanned,
			func(c [3]int32) bool { return c[0] == 2 && c[1] == 2 }},
		{"node without the query", errors.New("chain endpoint failed verification"), scanned,
			func(c [3]int32) bool { return c[0] == 2 && c[1] == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := &countingChain{Client: net.Client, indexErr: tc.indexErr}
			c := chainClient(t, net, ch)
			var out bytes.Buffer
			if _, err := c.Get(ctx, ObjectRef("", obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("get object %d without its bag: %v", obj.ID, err)
			}
			if got := ch.counts(); !tc.want(got) {
				t.Fatalf("chain reads (ObjectByID, Bags, DataObject) = %v", got)
			}
			_, err := c.Get(ctx, ObjectRef("", obj.ID+1000), &out)
			if !errors.Is(err, chain.ErrObjectNotFound) || !strings.Contains(err.Error(), "is in no bag") {
				t.Fatalf("get of an unknown object: %v; want ErrObjectNotFound, in no bag", err)
			}
			if got := ch.counts(); !tc.wantUnknown(got) {
				t.Fatalf("chain reads (ObjectByID, Bags, DataObject) after an unknown object = %v", got)
			}
		})
	}
}
