package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// faultyTransport wraps the real chain transport of one provider to play a
// lagging or lying RPC endpoint — the one fault the real chain cannot be
// made to commit. Everything it does not change goes to the real chain.
type faultyTransport struct {
	chain.Transport

	mu sync.Mutex
	// hide answers every object list with nothing and every object query
	// with not-found.
	hide bool
	// staleHeight, when above zero, is the height /info answers.
	staleHeight int64
	// afterList runs once, after the real chain answered an object list
	// and before the answer is returned: what happens between a
	// reconcile's two reads.
	afterList func()
}

func (f *faultyTransport) set(fn func(*faultyTransport)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultyTransport) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	// A bag's object list is read whole (QueryObjects) or by pages
	// (QueryObjectsPage, what chain.Client.Objects uses).
	list := path == chain.QueryObjects || path == chain.QueryObjectsPage
	f.mu.Lock()
	hide, stale, hook := f.hide, f.staleHeight, f.afterList
	if list {
		f.afterList = nil
	}
	f.mu.Unlock()
	switch {
	case path == chain.QueryObjects && hide:
		return []byte("[]"), nil
	case path == chain.QueryObjectsPage && hide:
		return []byte(`{"items":[]}`), nil
	case path == chain.QueryObject && hide:
		return nil, chain.Errorf(chain.ErrObjectNotFound, "data object does not exist (says a lying endpoint)")
	case path == chain.QueryInfo && stale > 0:
		b, err := f.Transport.Query(ctx, path, data)
		if err != nil {
			return b, err
		}
		var info chain.NodeInfo
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, err
		}
		info.Height = stale
		return json.Marshal(info)
	}
	b, err := f.Transport.Query(ctx, path, data)
	if list && hook != nil && err == nil {
		hook()
	}
	return b, err
}

// faultyNet runs a network whose provider 0 reads the chain through a
// faultyTransport, with extra options per provider.
func faultyNet(t *testing.T, perProvider func(i int) []provider.Option) (*testnet.Network, *faultyTransport) {
	ft := &faultyTransport{}
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.ChainTransport = func(i int, tr chain.Transport) chain.Transport {
			if i != 0 {
				return tr
			}
			ft.mu.Lock()
			ft.Transport = tr
			ft.mu.Unlock()
			return ft
		}
		c.ProviderOptionsFor = perProvider
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
	}))
	return net, ft
}

// An object registered and bound between a reconcile's read of the chain's
// object list and its read of the store is not taken for deleted.
func TestReconcileRaceKeepsFreshObject(t *testing.T) {
	net, ft := faultyNet(t, nil)
	ctx := testCtx(t)
	p0 := net.Provider(0)
	var fresh chain.DataObject
	var before float64
	hookDone := make(chan error, 1)
	ft.set(func(f *faultyTransport) {
		f.afterList = func() {
			before = counter(t, p0.Registry(), "satchel_provider_reconciles_total", nil)
			var err error
			fresh, err = net.UploadChunked(ctx, randomBytes(t, 12<<10), 4<<10, 0)
			hookDone <- err
		}
	})
	select {
	case err := <-hookDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("no reconcile read the object list")
	}
	// The pass that read the list before the upload ends.
	testnet.Wait(t, "the racing reconcile pass to end", func() bool {
		return counter(t, p0.Registry(), "satchel_provider_reconciles_total", nil) > before
	})
	if !p0.Holds(fresh.ID) {
		t.Fatal("an object bound during a reconcile was removed as deleted on chain")
	}
	if ts := p0.Server().Tombstones(); len(ts) != 0 {
		t.Fatalf("tombstones %+v for an object the chain holds", ts)
	}
}

// A chain endpoint that answers not-found deletes nothing: behind the
// node's height it is not believed at all; at a good height the object
// gets a tombstone and waits for its grace; when the endpoint tells the
// truth again the tombstone goes and the object stays.
func TestLyingChainDeletesNothing(t *testing.T) {
	net, ft := faultyNet(t, func(i int) []provider.Option {
		return []provider.Option{provider.WithDeletionGrace(time.Hour)}
	})
	ctx := testCtx(t)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	p0 := net.Provider(0)
	testnet.Wait(t, "held", holds(p0, obj))

	// A reset endpoint: height 1, and no objects.
	ft.set(func(f *faultyTransport) { f.hide, f.staleHeight = true, 1 })
	testnet.Wait(t, "the unconfirmed deletion refused", func() bool {
		return counter(t, p0.Registry(), "satchel_provider_deletions_unconfirmed_total", nil) > 0
	})
	if !p0.Holds(obj.ID) || len(p0.Server().Tombstones()) != 0 {
		t.Fatalf("an endpoint behind the node's height: held %v, tombstones %+v", p0.Holds(obj.ID), p0.Server().Tombstones())
	}

	// An endpoint at a good height that says the object is gone.
	ft.set(func(f *faultyTransport) { f.staleHeight = 0 })
	var seen []provider.Tombstone
	testnet.Wait(t, "a tombstone", func() bool {
		seen = statusOf(t, p0).Tombstones
		return len(seen) == 1
	})
	ts := seen[0]
	if ts.Object != uint64(obj.ID) || ts.Evidence != provider.EvidenceAbsent || time.Until(ts.Due) < 50*time.Minute {
		t.Fatalf("tombstone %+v", ts)
	}
	if !p0.Holds(obj.ID) {
		t.Fatal("removed before its grace ended")
	}

	// The truth again: the tombstone goes, the object stays.
	ft.set(func(f *faultyTransport) { f.hide = false })
	testnet.Wait(t, "the tombstone dropped", func() bool { return len(p0.Server().Tombstones()) == 0 })
	if !p0.Holds(obj.ID) {
		t.Fatal("object lost")
	}
}

// The chain's deletion event gives every holder a tombstone: the object
// is removed when its grace ends; an operator can keep it over the status
// API, and a restart keeps the tombstone and the keep.
func TestDeletionWaitsForGraceAndCanBeKept(t *testing.T) {
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.ProviderOptionsFor = func(i int) []provider.Option {
			switch i {
			case 0:
				return []provider.Option{provider.WithDeletionGrace(time.Hour)}
			case 1:
				return []provider.Option{provider.WithDeletionGrace(3 * time.Second)}
			}
			return nil
		}
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
	}))
	ctx := testCtx(t)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	p0, p1 := net.Provider(0), net.Provider(1)
	testnet.Wait(t, "held by 0", holds(p0, obj))
	testnet.Wait(t, "held by 1", holds(p1, obj))
	if _, err := net.Client.Submit(ctx, net.Member, chain.MsgDeleteDataObjects{Bag: net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	var seen []provider.Tombstone
	// A reconcile pass may notice the absence first (evidence "absent");
	// the deletion event, read once the next block is committed, upgrades
	// the evidence.
	testnet.Wait(t, "provider 1's tombstone", func() bool {
		seen = p1.Server().Tombstones()
		return len(seen) == 1 && seen[0].Evidence == provider.EvidenceDeleted
	})
	if ts := seen[0]; ts.Evidence != provider.EvidenceDeleted || ts.Object != uint64(obj.ID) {
		t.Fatalf("tombstone %+v, want object %d with evidence %q", ts, obj.ID, provider.EvidenceDeleted)
	}
	testnet.Wait(t, "provider 1 removing it when due", holdsNot(p1, obj))

	testnet.Wait(t, "provider 0's tombstone", func() bool { return len(statusOf(t, p0).Tombstones) == 1 })
	if code := postTombstone(t, p0, obj.ID, "keep"); code != http.StatusOK {
		t.Fatalf("keep answered %d", code)
	}
	if code := postTombstone(t, p0, 999999, "keep"); code != http.StatusNotFound {
		t.Fatalf("keeping an object with no tombstone answered %d, want 404", code)
	}
	if err := p0.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p0.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	ts := statusOf(t, p0).Tombstones
	if len(ts) != 1 || !ts[0].Kept || ts[0].Object != uint64(obj.ID) {
		t.Fatalf("tombstones after a restart: %+v", ts)
	}
	testnet.Wait(t, "held after the restart", holds(p0, obj))
	if code := postTombstone(t, p0, obj.ID, "release"); code != http.StatusOK {
		t.Fatalf("release answered %d", code)
	}
	if ts := p0.Server().Tombstones(); len(ts) != 1 || ts[0].Kept {
		t.Fatalf("tombstones after release: %+v", ts)
	}
}

func statusOf(t *testing.T, p *testnet.Provider) provider.Status {
	t.Helper()
	resp, err := http.Get("http://" + p.Server().StatusAddr() + provider.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st provider.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func postTombstone(t *testing.T, p *testnet.Provider, obj chain.ObjectID, action string) int {
	t.Helper()
	url := fmt.Sprintf("http://%s%s/%d/%s", p.Server().StatusAddr(), provider.TombstonesPath, obj, action)
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(provider.ActionHeader, action)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
