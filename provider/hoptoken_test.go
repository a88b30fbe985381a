package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// fixedGrants is an UploadGrants of grants given up front, in place of a
// contract responder's (whose CONSIGN is tested in contracts/).
type fixedGrants struct {
	mu sync.Mutex
	m  map[[16]byte]contracts.Grant
}

func (f *fixedGrants) Grant(session []byte) (contracts.Grant, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s [16]byte
	if len(session) != len(s) {
		return contracts.Grant{}, false
	}
	copy(s[:], session)
	g, ok := f.m[s]
	return g, ok
}

// ExtendGrant keeps the grants given up front as they are.
func (f *fixedGrants) ExtendGrant(_ context.Context, session []byte, _, _ uint64) (contracts.Grant, error) {
	if g, ok := f.Grant(session); ok {
		return g, nil
	}
	return contracts.Grant{}, contracts.ErrNotFound
}

// hopProvider is a provider host serving the store protocol with the
// node's chain authorizer over a fake chain that assigns bag to its
// bucket, and upload sessions under grants.
type hopProvider struct {
	h    *p2p.Host
	bs   *blockstore.Store
	auth *chainAuth
}

func newHopProvider(t *testing.T, h *p2p.Host, bag chain.BagID, grants UploadGrants) hopProvider {
	t.Helper()
	f := newFakeChain()
	f.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1}}
	bs, err := blockstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	s := &Server{h: h, bs: bs, auth: newChainAuth(f, 1)}
	s.SetUploadGrants(grants)
	relay := store.NewRelay(h.Libp2p())
	t.Cleanup(func() { _ = relay.Close() })
	store.NewHandler(bs.ForProtocols(), s.auth, h.Libp2p().Peerstore().PrivKey(h.ID()), store.WithRelay(relay)).Register(h.Protocol())
	return hopProvider{h: h, bs: bs, auth: s.auth}
}

// TestPipelineIntoECDSARentersSession: a renter whose peer ID is a hash of
// its key (ECDSA here; RSA alike) pipelines into its own sessions. The hop
// checks the renter's token against the key its CONSIGN's connection
// authenticated (the grant's RenterKey, as a contract responder sets it),
// as no key can be read from such an ID: the
// renter's chunk is taken by both providers, and a chunk forwarded with a
// forged token (another ECDSA key's, or the renter's for another chunk) is
// refused by the hop and not stored.
func TestPipelineIntoECDSARentersSession(t *testing.T) {
	renterKey, _, err := crypto.GenerateKeyPair(crypto.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	rogueKey, _, err := crypto.GenerateKeyPair(crypto.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	net := p2ptestnet.New(t, 3, p2ptestnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 {
			return []p2p.Option{p2p.WithIdentity(renterKey)}
		}
		return nil
	}))
	rh := net.Host(0)
	if _, err := rh.ID().ExtractPublicKey(); err == nil {
		t.Fatal("the ECDSA renter's peer ID holds its key; the test needs one that does not")
	}
	const bag = chain.BagID("dynamic:channel:1")
	headSess, hopSess := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	grants := func(session []byte) *fixedGrants {
		var s [16]byte
		copy(s[:], session)
		return &fixedGrants{m: map[[16]byte]contracts.Grant{s: {Session: s, Bag: bag, MaxBytes: 1 << 30,
			Expires: time.Now().Add(time.Hour), Renter: rh.ID(), RenterKey: renterKey.GetPublic()}}}
	}
	head := newHopProvider(t, net.Host(1), bag, grants(headSess))
	hop := newHopProvider(t, net.Host(2), bag, grants(hopSess))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, rh.Libp2p(), head.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	push := func(seed byte, token []byte) (store.ChunkPush, store.PipelineResult) {
		t.Helper()
		data := make([]byte, 64<<10)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		data[0] = seed
		c := store.ChunkPush{Bag: string(bag), CID: chunker.ChunkCID(data), Data: data, Session: headSess,
			Forward: []store.Hop{{Peer: hop.h.ID(), Addrs: hop.h.Addrs(), Session: hopSess, Token: token}}}
		r, err := s.PushPipeline(ctx, c)
		if err != nil {
			t.Fatalf("pipeline push: %v", err)
		}
		return c, r
	}

	c, r := push(1, nil) // PushPipeline signs with the renter's key
	if len(r.Receipts) != 2 || len(r.Failed) != 0 {
		t.Fatalf("the renter's own chunk: %d receipts, failed %v; want both providers' receipts", len(r.Receipts), r.Failed)
	}
	if has, err := hop.bs.Has(c.CID); err != nil || !has {
		t.Fatalf("the hop does not hold the renter's chunk (%v, %v)", has, err)
	}

	rogue, err := store.SignHopToken(rogueKey, string(bag), hopSess, c.CID, hop.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	renters, err := store.SignHopToken(renterKey, string(bag), hopSess, c.CID, hop.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string][]byte{
		"another ECDSA key's token":            rogue,
		"the renter's token for another chunk": renters,
	} {
		c, r := push(2, tok)
		if len(r.Receipts) != 1 || len(r.Failed) != 1 || r.Failed[0].Peer != hop.h.ID() {
			t.Fatalf("%s: %d receipts, failed %v; want the head's receipt and the hop failed", name, len(r.Receipts), r.Failed)
		}
		if err := r.Failed[0].Err; !strings.Contains(err.Error(), "invalid hop token") {
			t.Fatalf("%s: the hop failed with %v; want a refusal naming the hop token", name, err)
		}
		if has, err := hop.bs.Has(c.CID); err != nil || has {
			t.Fatalf("%s: the hop holds the chunk (%v, %v)", name, has, err)
		}
	}
}
