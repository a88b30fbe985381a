package client

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/testnet"
)

// TestNetworkLifecycle is the storage network's whole story in one test,
// through real hosts and the real embedded chain: a 50 MiB file put with
// N=3 survives a provider killed mid-upload, the provider restarts and
// syncs back to full, the file comes back byte-exact from the rebuilt
// provider alone, and deleting the object removes it everywhere.
func TestNetworkLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	// No serve grace: the test reads the object just before deleting it.
	net := testnet.New(t, testnet.Providers(3), testnet.ProviderOptions(provider.WithServeGrace(0)))
	c := netClient(t, net, t.TempDir(), WithReconnectWait(time.Second)) // the killed provider stays down
	ctx := testCtx(t)
	data := randomBytes(t, 50<<20, 50)

	victim := net.Provider(1)
	var once sync.Once
	var wg sync.WaitGroup
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(3), WithMinRedundancy(2), WithProgress(func(p Progress) {
		if p.TotalChunks > 0 && p.Links[LinkSigned] >= p.TotalChunks/3 {
			once.Do(func() {
				wg.Add(1)
				go func() { defer wg.Done(); _ = victim.Kill() }()
			})
		}
	}))
	wg.Wait()
	if err != nil {
		t.Fatalf("put with a provider killed mid-upload: %v", err)
	}
	if victim.Running() {
		t.Fatal("the provider was not killed during the upload")
	}
	if o, err := net.Client.DataObject(ctx, net.Bag, obj.ID); err != nil || !o.Accepted || o.ContentID != obj.CID.String() {
		t.Fatalf("chain object %+v, %v; want accepted with CID %s", o, err, obj.CID)
	}

	// The killed provider comes back and syncs the object from its peers.
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the restarted provider to sync the object", func() bool { return victim.Holds(obj.ID) })

	// Byte-exact from the restarted provider alone: the others go down.
	for _, p := range net.Providers() {
		if p != victim {
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out, WithPeers(victim.AddrInfo())); err != nil {
		t.Fatalf("get from the restarted provider: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("object read back differs from what was put")
	}
	for _, p := range net.Providers() {
		if p != victim {
			if err := p.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Deleting the object on chain removes it, and every block of it, from
	// every provider.
	if _, err := net.Client.Submit(ctx, net.Member, chain.MsgDeleteDataObjects{Bag: net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	blocks := objectBlocks(t, data)
	for _, p := range net.Providers() {
		testnet.Wait(t, fmt.Sprintf("provider %d to remove the deleted object and its blocks", p.Index), func() bool {
			return !p.Holds(obj.ID) && heldBlocks(p.Store(), blocks) == 0
		})
	}
}

// objectBlocks lists every block of data's DAG as the client chunks it:
// the chunks, the interior nodes and the root.
func objectBlocks(t *testing.T, data []byte) []cid.Cid {
	t.Helper()
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(itChunk))
	if err != nil {
		t.Fatal(err)
	}
	out := []cid.Cid{res.Root}
	for _, c := range res.Chunks {
		out = append(out, c.CID)
	}
	for _, n := range res.Nodes {
		out = append(out, n.CID)
	}
	return out
}

// heldBlocks counts the blocks of blocks that bs holds; a stopped
// provider's store (nil) or one that cannot be read counts as holding all.
func heldBlocks(bs *blockstore.Store, blocks []cid.Cid) int {
	if bs == nil {
		return len(blocks)
	}
	n := 0
	for _, c := range blocks {
		if ok, err := bs.Has(c); err != nil || ok {
			n++
		}
	}
	return n
}
