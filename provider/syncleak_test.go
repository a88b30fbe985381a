package provider_test

import (
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// A sync that never finishes — its only source lacks some chunks, then the
// object is deleted, so no attempt ever completes — leaves none of the
// blocks it fetched once its session expires.
func TestAbortedSyncLeavesNothingBehind(t *testing.T) {
	net := newNet(t, testnet.Providers(2), testnet.Configure(func(c *testnet.Config) {
		c.ProviderOptionsFor = func(i int) []provider.Option {
			return []provider.Option{provider.WithSyncSessionExpiry(2 * time.Second)}
		}
	}))
	ctx := testCtx(t)
	p0, p1 := net.Provider(0), net.Provider(1)
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 40<<10)
	obj, err := net.UploadChunked(ctx, data, 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	// The only source loses its last three chunks.
	m, ok, err := p0.Store().Manifest(uint64(obj.ID))
	if err != nil || !ok {
		t.Fatalf("manifest on provider 0: %v %v", ok, err)
	}
	for _, c := range m.Chunks[len(m.Chunks)-3:] {
		if err := p0.Store().Delete(c.CID); err != nil {
			t.Fatal(err)
		}
	}
	if err := p1.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "a partial sync", func() bool {
		return counter(t, p1.Registry(), "satchel_provider_sync_objects_total", map[string]string{"result": "failed"}) > 0 &&
			p1.Store().Stats().Blocks > 0
	})
	if p1.Holds(obj.ID) {
		t.Fatal("provider 1 holds an object its source could not serve whole")
	}
	// The object goes: nothing will finish the sync.
	if _, err := net.Client.Submit(ctx, net.Member, chain.MsgDeleteDataObjects{Bag: net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the aborted sync's blocks expired", func() bool {
		st := p1.Store().Stats()
		return st.Blocks == 0 && st.Bytes == 0
	})
}
