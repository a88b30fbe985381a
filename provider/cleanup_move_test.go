package provider_test

import (
	"context"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// holdKey tags the context of the one chain read a bagHold holds.
type holdKey struct{}

// bagHold is a chain transport that, for a read of a bag whose context
// carries holdKey, asks the chain and then keeps the answer until release:
// a peer look-up that read the bag's buckets and is still on its way
// (the DHT takes up to seconds) while the bag moves.
type bagHold struct {
	chain.Transport
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *bagHold) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	out, err := b.Transport.Query(ctx, path, data)
	if path == chain.QueryBag && ctx.Value(holdKey{}) != nil {
		b.once.Do(func() { close(b.held) })
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, err
}

// A peer look-up that read the bag's buckets before the bag moved and ends
// after the move does not make the provider the bag moved away from count
// the bag's old providers as its new ones: they still hold the object (they
// were moved away too), the new ones do not, and the object stays.
func TestMovedBagCleanupIgnoresStalePeerLookup(t *testing.T) {
	hold := &bagHold{held: make(chan struct{}), release: make(chan struct{})}
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.ChainTransport = func(i int, tr chain.Transport) chain.Transport {
			if i != 0 {
				return tr
			}
			hold.Transport = tr
			return hold
		}
		// One confirmation is enough for provider 0: the one old holder
		// a stale list names would do.
		c.ProviderOptionsFor = func(i int) []provider.Option {
			if i == 0 {
				return []provider.Option{provider.WithCleanupConfirmations(1)}
			}
			return nil
		}
	}))
	ctx := testCtx(t)
	p0, p1, p2 := net.Provider(0), net.Provider(1), net.Provider(2)
	// The bag lives in buckets 0 and 1; provider 2 is then stopped, so the
	// bag's new bucket below is one whose provider has not synced.
	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: net.Bag, Remove: []chain.StorageBucketID{p2.Bucket},
	}); err != nil {
		t.Fatal(err)
	}
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	testnet.Wait(t, "synced by provider 1", holds(p1, obj))
	if err := p2.Kill(); err != nil {
		t.Fatal(err)
	}

	// Provider 0 looks the bag's peers up; the look-up reads the buckets
	// (0 and 1) and is held on its way.
	type lookup struct {
		ids []peer.ID
		err error
	}
	done := make(chan lookup, 1)
	go func() {
		ids, err := p0.Server().LookUpChainPeers(context.WithValue(ctx, holdKey{}, true), net.Bag)
		done <- lookup{ids, err}
	}()
	select {
	case <-hold.held:
	case <-ctx.Done():
		t.Fatal("the look-up never read the bag")
	}
	// The bag moves to bucket 2 alone; provider 0 handles the event.
	res, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: net.Bag, Add: []chain.StorageBucketID{p2.Bucket}, Remove: []chain.StorageBucketID{p0.Bucket, p1.Bucket},
	})
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "provider 0 handled the move", func() bool {
		return p0.Server().Status().ChainHeight >= res.Height
	})
	// Provider 0 reconciled the moved bag since (on its own look-up of the
	// bag's new buckets) and keeps the object: only then does the held
	// look-up end.
	testnet.Wait(t, "provider 0 waiting for confirmations", func() bool {
		return p0.Server().Status().CleanupWaiting == 1
	})
	close(hold.release)
	var l lookup
	select {
	case l = <-done:
	case <-ctx.Done():
		t.Fatal("the look-up did not end")
	}
	if l.err != nil || len(l.ids) != 1 || l.ids[0] != p1.AddrInfo().ID {
		t.Fatalf("the stale look-up found %v (%v), want provider 1 (the test's premise)", l.ids, l.err)
	}

	// Two whole reconciles after the look-up ended, each cleaning up the
	// moved bag: provider 0 still holds the object, waiting for bucket 2.
	n := fullReconciles(t, p0)
	testnet.Wait(t, "two full reconciles of provider 0", func() bool { return fullReconciles(t, p0) >= n+2 })
	if !p0.Holds(obj.ID) {
		t.Fatal("provider 0 removed the object on the word of the bag's old providers")
	}
	testnet.Wait(t, "provider 0 waiting for confirmations", func() bool {
		return p0.Server().Status().CleanupWaiting == 1
	})
	if got := counter(t, p0.Registry(), "satchel_provider_cleanup_objects_total", nil); got != 0 {
		t.Fatalf("provider 0 removed %v objects", got)
	}
	if !p1.Holds(obj.ID) {
		t.Fatal("provider 1 removed the object with no new provider holding it")
	}
}
