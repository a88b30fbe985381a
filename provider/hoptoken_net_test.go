package provider_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
	"github.com/satchel-net/satchel/topics"
)

// TestConsignedECDSARenterPipelines: a renter whose libp2p identity is an
// ECDSA key (its peer ID a hash of the key) consigns contracts with two
// providers over the contract protocol, on a real chain, and pipelines a
// chunk through the first into its session with the second: the second
// checks the renter's hop token against the key the CONSIGN's connection
// authenticated (kept in the grant, so after the renter left and the hop's
// peerstore forgot it too), so it takes the chunk and both sign. A chunk forwarded
// with another key's token is refused there and not stored.
func TestConsignedECDSARenterPipelines(t *testing.T) {
	net := newNet(t, testnet.Providers(2), testnet.Configure(func(c *testnet.Config) { c.Contracts = true }))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key, _, err := crypto.GenerateKeyPair(crypto.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	var boot []peer.AddrInfo
	for _, p := range net.Providers() {
		boot = append(boot, p.AddrInfo())
	}
	h, err := p2p.New(ctx, p2p.WithIdentity(key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(boot...), p2p.WithPubSubOptions(contracts.ScoreOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if _, err := h.ID().ExtractPublicKey(); err == nil {
		t.Fatal("the ECDSA renter's peer ID holds its key; the test needs one that does not")
	}

	data := bytes.Repeat([]byte("ecdsa renter"), 8<<10)
	renter := contracts.NewRenter(h, contracts.NewGossip(h, net.Client, nil), net.Member, net.MemberID, net.Client, nil, nil)
	t.Cleanup(func() { _ = renter.Close() })
	req := contracts.Request{
		Terms: contracts.Terms{Bag: net.Bag, Size: 1 << 20, Chunks: 4,
			Availability: topics.High, Speed: topics.High, Redundancy: 2},
		Duration: 30 * 24 * time.Hour,
	}
	topic, err := req.Topic()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Join(topic.String()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the providers on the contract topic", func() bool { return len(h.TopicPeers(topic.String())) >= 2 })
	neg, err := renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(neg.Contracts) != 2 {
		t.Fatalf("%d contracts consigned; want 2", len(neg.Contracts))
	}
	head, hop := neg.Contracts[0], neg.Contracts[1]
	var hopProvider *testnet.Provider
	for _, p := range net.Providers() {
		if p.Host().ID() == hop.Contract.ProviderPeer {
			hopProvider = p
		}
	}
	if hopProvider == nil {
		t.Fatalf("consigned provider %s is not in the network", hop.Contract.ProviderPeer)
	}

	st, err := store.Open(ctx, h.Libp2p(), head.Contract.ProviderPeer)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	push := func(body []byte, token []byte) (store.ChunkPush, store.PipelineResult) {
		t.Helper()
		c := store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body, Session: head.Grant.Session[:],
			Forward: []store.Hop{{Peer: hopProvider.Host().ID(), Addrs: hopProvider.Host().Addrs(), Session: hop.Grant.Session[:], Token: token}}}
		r, err := st.PushPipeline(ctx, c)
		if err != nil {
			t.Fatalf("pipeline push: %v", err)
		}
		return c, r
	}

	// The renter leaves the hop, and the hop forgets its key as libp2p's
	// peerstore manager does a minute after a disconnect: the grant keeps
	// the key its CONSIGN's connection authenticated.
	if err := h.Libp2p().Network().ClosePeer(hopProvider.Host().ID()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the renter to leave the hop", func() bool {
		return hopProvider.Host().Libp2p().Network().Connectedness(h.ID()) != network.Connected
	})
	hopProvider.Host().Libp2p().Peerstore().RemovePeer(h.ID())

	c, r := push(data[:64<<10], nil) // signed with the renter's ECDSA key
	if len(r.Receipts) != 2 || len(r.Failed) != 0 {
		t.Fatalf("the renter's chunk: %d receipts, failed %v; want both providers' receipts", len(r.Receipts), r.Failed)
	}
	if ok, err := hopProvider.Store().Has(c.CID); err != nil || !ok {
		t.Fatalf("the hop does not hold the renter's chunk (%v, %v)", ok, err)
	}

	other, _, err := crypto.GenerateKeyPair(crypto.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := data[64<<10:]
	forged, err := store.SignHopToken(other, string(net.Bag), hop.Grant.Session[:], chunker.ChunkCID(body), hopProvider.Host().ID())
	if err != nil {
		t.Fatal(err)
	}
	c, r = push(body, forged)
	if len(r.Receipts) != 1 || len(r.Failed) != 1 || !strings.Contains(r.Failed[0].Err.Error(), "invalid hop token") {
		t.Fatalf("a forged token: %d receipts, failed %v; want the hop refusing the hop token", len(r.Receipts), r.Failed)
	}
	if ok, err := hopProvider.Store().Has(c.CID); err != nil || ok {
		t.Fatalf("the hop holds the chunk forwarded with a forged token (%v, %v)", ok, err)
	}
}
