package provider_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/chain/verify"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// slowClocks leave the providers only the chain's events to act on: the
// whole-bucket reconcile and the retry clock do not fire within a test.
func slowClocks() []provider.Option {
	return append(fastOptions(), provider.WithReconcileInterval(time.Hour), provider.WithRetryInterval(time.Hour))
}

func fullReconciles(t *testing.T, p *testnet.Provider) float64 {
	return counter(t, p.Registry(), "satchel_provider_full_reconciles_total", nil)
}

// An upload, its acceptance and its deletion reach every provider by the
// chain's events, each provider reading only the object they name: no
// provider lists its bucket again after the one listing at start.
func TestEventsReachProvidersWithoutTimer(t *testing.T) {
	net := testnet.New(t, testnet.ProviderOptions(slowClocks()...))
	ctx := testCtx(t)
	for _, p := range net.Providers() {
		testnet.Wait(t, "the start's full reconcile", func() bool { return fullReconciles(t, p) >= 1 })
	}
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced by the acceptance event", holds(p, obj))
	}
	if _, err := net.Client.Submit(ctx, net.Member, chain.MsgDeleteDataObjects{Bag: net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range net.Providers() {
		testnet.Wait(t, "removed by the deletion event", holdsNot(p, obj))
	}
	for i, p := range net.Providers() {
		if n := fullReconciles(t, p); n != 1 {
			t.Errorf("provider %d listed its whole bucket %v times; want only the start's", i, n)
		}
	}
}

// pausable is a chain connection that can be cut: while down every call
// fails, as an unreachable endpoint's would.
type pausable struct {
	chain.Transport
	mu   sync.Mutex
	down bool
}

var errCut = errors.New("connection to the chain endpoint lost (test)")

func (p *pausable) cut(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *pausable) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errCut
	}
	return nil
}

func (p *pausable) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.Transport.Query(ctx, path, data)
}

func (p *pausable) BlockEvents(ctx context.Context, h int64) (chain.BlockEvents, error) {
	if err := p.check(); err != nil {
		return chain.BlockEvents{}, err
	}
	return p.Transport.BlockEvents(ctx, h)
}

func (p *pausable) WaitForHeight(ctx context.Context, h int64) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := p.Transport.WaitForHeight(ctx, h); err != nil {
		return err
	}
	return p.check()
}

// A provider cut off from the chain for some blocks catches up on what it
// missed when the connection returns, without waiting for the reconcile
// timer.
func TestMissedBlocksCaughtUp(t *testing.T) {
	pt := &pausable{}
	net := testnet.New(t, testnet.ProviderOptions(slowClocks()...), testnet.Configure(func(c *testnet.Config) {
		c.ChainTransport = func(i int, tr chain.Transport) chain.Transport {
			if i != 0 {
				return tr
			}
			pt.Transport = tr
			return pt
		}
	}))
	ctx := testCtx(t)
	p0 := net.Provider(0)
	testnet.Wait(t, "the start's full reconcile", func() bool { return fullReconciles(t, p0) >= 1 })
	pt.cut(true)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	h, err := net.Client.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Client.Transport().WaitForHeight(ctx, h+3); err != nil {
		t.Fatal(err)
	}
	if p0.Holds(obj.ID) {
		t.Fatal("provider 0 synced while cut off from the chain")
	}
	pt.cut(false)
	testnet.Wait(t, "provider 0 to catch up on the missed blocks", holds(p0, obj))
}

// forger is a lying chain endpoint: once set, it adds a forged deletion of
// an object to every block's events and hides every record in its proven
// answers, so a provider that believed it would delete the object.
type forger struct {
	chain.Transport
	verify.Source

	mu     sync.Mutex
	victim *chain.DataObject
	forged int
	// wrongBag, when set, makes the forged events name the victim under
	// this bag and leaves the proven answers honest.
	wrongBag chain.BagID
}

func (f *forger) target() *chain.DataObject {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.victim
}

func (f *forger) BlockEvents(ctx context.Context, h int64) (chain.BlockEvents, error) {
	be, err := f.Transport.BlockEvents(ctx, h)
	if v := f.target(); err == nil && v != nil {
		bag := v.Bag
		f.mu.Lock()
		if f.wrongBag != "" {
			bag = f.wrongBag
		}
		f.mu.Unlock()
		be.Events = append(be.Events, chain.NewEvent(chain.ObjectsDeleted{Bag: bag, Objects: []chain.ObjectID{v.ID}}))
		f.mu.Lock()
		f.forged++
		f.mu.Unlock()
	}
	return be, err
}

func (f *forger) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	b, err := f.Transport.Query(ctx, path, data)
	f.mu.Lock()
	honest := f.wrongBag != ""
	f.mu.Unlock()
	if err != nil || path != chain.QueryProven || f.target() == nil || honest {
		return b, err
	}
	var w state.Witness
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	for i := range w.Gets {
		w.Gets[i].Found, w.Gets[i].Value = false, nil
	}
	return json.Marshal(w)
}

// A provider reading the chain through proven reads (as `satchel storage
// server` does against a remote endpoint) refuses a lying endpoint: a
// forged deletion event and the answers that would confirm it fail
// verification, the endpoint is named, and the object stays.
func TestForgedDeletionEventKeepsObject(t *testing.T) {
	forgedDeletionKeepsObject(t, false)
}

// Object IDs are global: an event that names a held object under another
// bag the node stores (whose proven answer truly lacks it) does not make
// the node delete its copy from the bag it is in.
func TestDeletionEventNamingAnotherBagKeepsObject(t *testing.T) {
	forgedDeletionKeepsObject(t, true)
}

func forgedDeletionKeepsObject(t *testing.T, wrongBag bool) {
	liar := &forger{}
	var proveErr error
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
		c.ChainTransport = func(i int, tr chain.Transport) chain.Transport {
			if i != 0 {
				return tr
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The test trusts its in-process node for the root only.
			lb, err := tr.(verify.Source).LightBlock(ctx, 1)
			if err != nil {
				proveErr = err
				return tr
			}
			liar.Transport, liar.Source = tr, tr.(verify.Source)
			pt, err := rpc.Prove(ctx, liar, "liar.example:26657", rpc.Trust{Height: 1, Hash: hex.EncodeToString(lb.Hash())})
			if err != nil {
				proveErr = err
				return tr
			}
			return pt
		}
	}))
	if proveErr != nil {
		t.Fatal(proveErr)
	}
	ctx := testCtx(t)
	p0 := net.Provider(0)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	testnet.Wait(t, "held by provider 0, reading proven", holds(p0, obj))

	if wrongBag {
		// A second channel's bag, assigned to every bucket as the first.
		r, err := net.Client.Submit(ctx, net.Member, chain.MsgCreateChannel{Member: net.MemberID})
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := chain.FindEvent[chain.ChannelCreated](r.Result.Events)
		liar.mu.Lock()
		liar.wrongBag = ch.Bag
		liar.mu.Unlock()
	}
	liar.mu.Lock()
	liar.victim = &obj
	liar.mu.Unlock()
	testnet.Wait(t, "the forged events refused", func() bool {
		liar.mu.Lock()
		forged := liar.forged
		liar.mu.Unlock()
		if wrongBag {
			return forged >= 5
		}
		return forged >= 3 && counter(t, p0.Registry(), "satchel_provider_chain_lies_total", nil) >= 3
	})
	if !p0.Holds(obj.ID) {
		t.Fatal("a forged deletion event removed the object")
	}
	if ts := statusOf(t, p0).Tombstones; len(ts) != 0 {
		t.Fatalf("tombstones %+v on a lying endpoint's word", ts)
	}
}
