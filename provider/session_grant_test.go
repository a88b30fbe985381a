package provider_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
	"github.com/satchel-net/satchel/topics"
)

// TestGrantBoundsSessionExpiry: a renter consigns a contract with a real
// provider on a real chain and pushes a chunk into its session asking the
// store protocol's longest expiry (7 days): the provider keeps it no later
// than the grant's end (1 hour), in its block store and in the receipt, so
// the chunks of a session never bound go when the room the grant reserved
// lapses, not days later.
func TestGrantBoundsSessionExpiry(t *testing.T) {
	net := newNet(t, testnet.Providers(1), testnet.Configure(func(c *testnet.Config) { c.Contracts = true }))
	ctx := testCtx(t)
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	cs := consign(t, ctx, h, renter, net, 256<<10)
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	body := bytes.Repeat([]byte("seven days"), 6<<10)
	asked := time.Now().Add(store.MaxSessionTTL)
	r, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
		Session: cs.Grant.Session[:], Expiry: asked})
	if err != nil {
		t.Fatalf("push under the grant: %v", err)
	}
	// The push slid the grant to one TTL past itself: its end now is at
	// most a TTL after the push returned, far short of what was asked.
	grantEnd := time.Now().Add(contracts.GrantTTL)
	if r.GetExpiryUnix() > grantEnd.Unix() {
		t.Errorf("receipt expiry %v is after the grant's end, at most %v", time.Unix(r.GetExpiryUnix(), 0).UTC(), grantEnd.UTC())
	}
	sess, n, open, err := p.Store().SessionInfo(store.ClientSessionID(cs.Grant.Session[:]))
	if err != nil || !open || n != uint64(len(body)) {
		t.Fatalf("session: open %v, %d bytes, %v; want open with %d bytes", open, n, err, len(body))
	}
	if sess.Expiry.After(grantEnd) {
		t.Fatalf("session expires %v, after its grant's end, at most %v (asked %v)", sess.Expiry.UTC(), grantEnd.UTC(), asked.UTC())
	}
}

// TestLapsedGrantEndsSession: a provider whose contract grants last a few
// seconds (contracts.WithGrantTTL) takes two contracts of one renter. The
// chunk of the first is pushed and never bound; the second's is pushed,
// registered on chain and bound. Once the grants lapse, the first session
// and its chunk are gone from the block store and the ledger holds no
// room, while the bound object's chunk stays.
func TestLapsedGrantEndsSession(t *testing.T) {
	net := newNet(t, testnet.Providers(1))
	ctx := testCtx(t)
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	ledger := shortGrants(t, net, p, 15*time.Second)

	unbound := consign(t, ctx, h, renter, net, 256<<10)
	bound := consign(t, ctx, h, renter, net, 256<<10)
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	push := func(cs contracts.Consigned, body []byte) {
		t.Helper()
		_, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
			Session: cs.Grant.Session[:], Expiry: time.Now().Add(store.MaxSessionTTL)})
		if err != nil {
			t.Fatalf("push under the grant: %v", err)
		}
	}
	left := bytes.Repeat([]byte("never bound"), 6<<10)
	push(unbound, left)
	kept := bytes.Repeat([]byte("bound"), 10<<10)
	push(bound, kept)
	res, err := chunker.Sum(ctx, bytes.NewReader(kept), chunker.WithChunkSize(64<<10))
	if err != nil || len(res.Chunks) != 1 {
		t.Fatalf("chunking the bound object: %v", err)
	}
	obj, err := net.Register(ctx, uint64(len(kept)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, store.BindRequest{Session: bound.Grant.Session[:], Bag: string(net.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if n := ledger.Reserved(); n == 0 {
		t.Fatal("no room reserved for the unbound session while its grant is live")
	}

	sid := store.ClientSessionID(unbound.Grant.Session[:])
	// The session's record goes before its blocks are collected: wait for both.
	testnet.Wait(t, "the lapsed grant's unbound session and its chunk to go", func() bool {
		_, _, open, err := p.Store().SessionInfo(sid)
		held, herr := p.Store().Has(chunker.ChunkCID(left))
		return err == nil && !open && herr == nil && !held
	})
	testnet.Wait(t, "the lapsed grants' room to come back", func() bool { return ledger.Reserved() == 0 })
	if ok, err := p.Store().Has(res.Chunks[0].CID); err != nil || !ok {
		t.Errorf("the bound object's chunk is gone (%v, %v) after its grant lapsed", ok, err)
	}
}

// shortGrants starts a contract responder on provider p (of a network
// started without contracts) whose ledger's grants last ttl, and makes p
// take upload sessions under its grants; it returns the ledger.
func shortGrants(t *testing.T, net *testnet.Network, p *testnet.Provider, ttl time.Duration) *contracts.Ledger {
	t.Helper()
	ledger, _ := grantsWith(t, net, p, contracts.WithGrantTTL(ttl))
	return ledger
}

// grantsWith starts a contract responder on provider p (of a network
// started without contracts) with a ledger made with opts, and makes p
// take upload sessions under its grants; it returns the ledger and the
// responder's contract store.
func grantsWith(t *testing.T, net *testnet.Network, p *testnet.Provider, opts ...contracts.LedgerOption) (*contracts.Ledger, *contracts.Store) {
	t.Helper()
	ledger, cst, _ := grantsIn(t, net, p, t.TempDir(), opts...)
	return ledger, cst
}

// grantsIn is grantsWith keeping its contract store in dir; it returns the
// responder too.
func grantsIn(t *testing.T, net *testnet.Network, p *testnet.Provider, dir string, opts ...contracts.LedgerOption) (*contracts.Ledger, *contracts.Store, *contracts.Responder) {
	t.Helper()
	ledger := contracts.NewLedger(net.Client, p.Bucket, p.Server().FreeDisk(), opts...)
	cst, err := contracts.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cst.Close() })
	topic, err := contractRequest(net, 256<<10).Topic()
	if err != nil {
		t.Fatal(err)
	}
	ph := p.Host()
	resp, err := contracts.NewResponder(ph, contracts.NewGossip(ph, net.Client, nil),
		contracts.Identity{Key: p.Key, Worker: p.Worker, Bucket: p.Bucket},
		contracts.NewChainAuthority(net.Client, p.Bucket), ledger, cst, contracts.WithTopics(topic),
		contracts.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Close() })
	p.Server().SetUploadGrants(resp)
	return ledger, cst, resp
}

// renterOn starts a renter host connected to net's providers, with the
// network's member as its renter.
func renterOn(t *testing.T, ctx context.Context, net *testnet.Network) (*p2p.Host, *contracts.Renter) {
	t.Helper()
	h, renter, err := net.RenterHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h, renter
}

// contractRequest asks one provider for size bytes of the network's bag.
func contractRequest(net *testnet.Network, size uint64) contracts.Request {
	return contracts.Request{
		Terms: contracts.Terms{Bag: net.Bag, Size: size, Chunks: 4,
			Availability: topics.High, Speed: topics.High, Redundancy: 1},
		Duration: 30 * 24 * time.Hour, Window: 10 * time.Second, Enough: 1,
	}
}

// consign negotiates a contract for size bytes with one of net's providers.
func consign(t *testing.T, ctx context.Context, h *p2p.Host, renter *contracts.Renter, net *testnet.Network, size uint64) contracts.Consigned {
	t.Helper()
	return consignN(t, ctx, h, renter, net, size, 1)[0]
}

// consignN negotiates contracts for size bytes with n of net's providers.
func consignN(t *testing.T, ctx context.Context, h *p2p.Host, renter *contracts.Renter, net *testnet.Network, size uint64, n int) []contracts.Consigned {
	t.Helper()
	req := contractRequest(net, size)
	req.Redundancy, req.Enough = uint32(n), n
	topic, err := req.Topic()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Join(topic.String()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "providers on the contract topic", func() bool { return len(h.TopicPeers(topic.String())) >= n })
	neg, err := renter.Negotiate(ctx, req)
	if err != nil || len(neg.Contracts) != n {
		t.Fatalf("negotiate: %v; want %d contracts", err, n)
	}
	return neg.Contracts
}
