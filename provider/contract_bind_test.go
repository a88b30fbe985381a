package provider_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestBindFailsUnrecordedContract: a BIND whose upload's contract the
// provider cannot record as bound (its contract store closed under it, a
// real leveldb failure) is answered FAILED, not BOUND, so the renter is
// never told its data is bound while the provider keeps its contract open,
// to be pruned. Once the provider runs again on the same contract store
// (restarted: no grant in memory), the same BIND is answered BOUND and
// the contract is settled: no longer open, the object recorded. A third
// BIND, after it was recorded, is BOUND too.
func TestBindFailsUnrecordedContract(t *testing.T) {
	net := newNet(t, testnet.Providers(1))
	ctx := testCtx(t)
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	dir := filepath.Join(t.TempDir(), "contracts")
	_, cst, resp := grantsIn(t, net, p, dir)

	cs := consign(t, ctx, h, renter, net, 256<<10)
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := bytes.Repeat([]byte("bound once recorded"), 3<<10)
	if _, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
		Session: cs.Grant.Session[:], Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("push under the grant: %v", err)
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(body), chunker.WithChunkSize(64<<10))
	if err != nil || len(res.Chunks) != 1 {
		t.Fatalf("chunking the object: %v", err)
	}
	obj, err := net.Register(ctx, uint64(len(body)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	bind := store.BindRequest{Session: cs.Grant.Session[:], Bag: string(net.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}

	if err := cst.Close(); err != nil {
		t.Fatal(err)
	}
	err = st.Bind(ctx, bind)
	if err == nil || !strings.Contains(err.Error(), "could not record the contract") {
		t.Fatalf("bind with the contract store failing: %v; want FAILED, could not record the contract", err)
	}
	t.Logf("failed: %v", err)

	// The provider restarts on the same contract store.
	if err := resp.Close(); err != nil {
		t.Fatal(err)
	}
	cst = restartGrants(t, net, p, dir)
	if _, open, err := cst.Open(cs.Contract.ID, cs.Contract.Provider); err != nil || !open {
		t.Fatalf("before the second bind the contract is open %v (%v), want open", open, err)
	}
	for i := range 2 {
		if err := st.Bind(ctx, bind); err != nil {
			t.Fatalf("bind %d after the restart: %v", i+2, err)
		}
	}
	if _, open, err := cst.Open(cs.Contract.ID, cs.Contract.Provider); err != nil || open {
		t.Fatalf("after BOUND the contract is open %v (%v), want settled", open, err)
	}
	if got, ok, err := cst.Bound(cs.Contract.ID, cs.Contract.Provider); err != nil || !ok || got != chain.ObjectID(obj.ID) {
		t.Fatalf("bound object %d %v (%v), want %d", got, ok, err, obj.ID)
	}
	// Each of the three BINDs recorded the object (the first before its
	// contract failed): it is one object bound, counted once.
	if n, err := metricsutil.Counter(p.Registry(), "satchel_provider_bound_objects_total"); err != nil || n != 1 {
		t.Fatalf("bound_objects_total = %v (%v) after three BINDs of one object; want 1", n, err)
	}
}

// restartGrants starts a contract responder on provider p, on the contract
// store in dir, subscribed to no topic (the first responder still holds
// them on the host), as a restarted provider's: it holds no grant.
func restartGrants(t *testing.T, net *testnet.Network, p *testnet.Provider, dir string) *contracts.Store {
	t.Helper()
	cst, err := contracts.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cst.Close() })
	ph := p.Host()
	resp, err := contracts.NewResponder(ph, contracts.NewGossip(ph, net.Client, nil),
		contracts.Identity{Key: p.Key, Worker: p.Worker, Bucket: p.Bucket},
		contracts.NewChainAuthority(net.Client, p.Bucket), contracts.NewLedger(net.Client, p.Bucket, p.Server().FreeDisk()), cst,
		contracts.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Close() })
	p.Server().SetUploadGrants(resp)
	return cst
}
