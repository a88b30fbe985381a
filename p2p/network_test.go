package p2p_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/multiformats/go-multihash"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// contractTopic is a contract topic as the design writes them (web asset).
const contractTopic = "0f01020303"

// Twenty hosts on a mocknet with 5 ms links: gossip reaches everyone, the DHT
// finds a provider the finder cannot even reach, and the DHT speaks
// /satchel/kad/1.0.0.
func TestMockNetwork(t *testing.T) {
	net := testnet.NewMock(t, 20, 5*time.Millisecond)

	t.Run("gossip reaches every subscriber", func(t *testing.T) {
		testGossip(t, net, 7)
	})
	t.Run("DHT protocol is /satchel/kad/1.0.0", func(t *testing.T) {
		testDHTProtocol(t, net)
	})
	t.Run("provider found through the DHT", func(t *testing.T) {
		provider, finder := net.Host(0), net.Host(10)
		// Cut the finder off from the provider entirely: no link, so no
		// connection either way. Whatever the finder learns about the
		// provider comes through other peers.
		mn := net.Mocknet()
		if err := mn.UnlinkPeers(provider.ID(), finder.ID()); err != nil {
			t.Fatal(err)
		}
		if finder.Libp2p().Network().Connectedness(provider.ID()) == network.Connected {
			if err := mn.DisconnectPeers(provider.ID(), finder.ID()); err != nil {
				t.Fatal(err)
			}
		}
		testProvide(t, provider, finder)
		if finder.Libp2p().Network().Connectedness(provider.ID()) == network.Connected {
			t.Fatal("the finder connected to the provider")
		}
	})
}

// The same over real loopback TCP and QUIC listeners, 20 hosts in a star. A
// connection gater keeps the finder and the provider apart.
func TestLoopbackNetwork(t *testing.T) {
	const n, providerIdx, finderIdx = 20, 3, 12
	keys := make([]crypto.PrivKey, n)
	ids := make([]peer.ID, n)
	for i := range keys {
		keys[i], _, _ = crypto.GenerateEd25519Key(rand.Reader)
		ids[i], _ = peer.IDFromPrivateKey(keys[i])
	}
	apart := map[peer.ID]peer.ID{ids[providerIdx]: ids[finderIdx], ids[finderIdx]: ids[providerIdx]}
	net := testnet.New(t, n, testnet.WithTopology(testnet.Star), testnet.WithHostOptions(func(i int) []p2p.Option {
		opts := []p2p.Option{p2p.WithIdentity(keys[i])}
		if other, ok := apart[ids[i]]; ok {
			opts = append(opts, p2p.WithLibp2pOptions(libp2p.ConnectionGater(denyPeer(other))))
		}
		return opts
	}))

	for i, h := range net.Hosts() {
		for _, a := range h.Addrs() {
			if !manet.IsIPLoopback(a) {
				t.Fatalf("host %d listens on %s, not loopback", i, a)
			}
		}
	}
	t.Run("gossip reaches every subscriber", func(t *testing.T) {
		testGossip(t, net, 0)
	})
	t.Run("DHT protocol is /satchel/kad/1.0.0", func(t *testing.T) {
		testDHTProtocol(t, net)
	})
	t.Run("provider found through the DHT", func(t *testing.T) {
		provider, finder := net.Host(providerIdx), net.Host(finderIdx)
		found := testProvide(t, provider, finder)
		// The provider record kept its loopback addresses on the way.
		if !slices.ContainsFunc(found.Addrs, manet.IsIPLoopback) {
			t.Fatalf("provider found with addresses %v, want its loopback ones", found.Addrs)
		}
		if finder.Libp2p().Network().Connectedness(provider.ID()) == network.Connected {
			t.Fatal("the finder connected to the provider")
		}
	})
}

// testGossip subscribes every host to a topic, publishes from one and checks
// that all the others receive the message, signed by the publisher.
func testGossip(t *testing.T, net *testnet.Network, from int) {
	subs := make([]*pubsub.Subscription, net.Len())
	for i, h := range net.Hosts() {
		sub, err := h.Subscribe(contractTopic)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
		subs[i] = sub
	}
	net.WaitTopicPeers(contractTopic, 2)

	publisher := net.Host(from)
	data := []byte("proposal from " + publisher.ID().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := publisher.Publish(ctx, contractTopic, data); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i, sub := range subs {
		if i == from {
			continue
		}
		wg.Go(func() {
			msg, err := sub.Next(ctx)
			if err != nil {
				t.Errorf("host %d: no message: %v", i, err)
				return
			}
			switch {
			case !bytes.Equal(msg.Data, data):
				t.Errorf("host %d: got %q", i, msg.Data)
			case msg.GetFrom() != publisher.ID():
				t.Errorf("host %d: message from %s, want %s", i, msg.GetFrom(), publisher.ID())
			case len(msg.Signature) == 0:
				t.Errorf("host %d: message is not signed", i)
			}
		})
	}
	wg.Wait()
	t.Logf("%d subscribers reached in %v", net.Len()-1, time.Since(start))
}

// testDHTProtocol checks that every host serves /satchel/kad/1.0.0 and not the
// IPFS DHT, and that its peers learned so over the wire.
func testDHTProtocol(t *testing.T, net *testnet.Network) {
	for i, h := range net.Hosts() {
		protos := h.Libp2p().Mux().Protocols()
		if !slices.Contains(protos, p2p.KadProtocol) {
			t.Errorf("host %d does not serve %s: %v", i, p2p.KadProtocol, protos)
		}
		if slices.Contains(protos, protocol.ID("/ipfs/kad/1.0.0")) {
			t.Errorf("host %d serves the IPFS DHT", i)
		}
	}
	h := net.Host(0)
	peers := h.DHT().RoutingTable().ListPeers()
	if len(peers) == 0 {
		t.Fatal("host 0 has an empty routing table")
	}
	for _, p := range peers {
		got, err := h.Libp2p().Peerstore().SupportsProtocols(p, p2p.KadProtocol)
		if err != nil || len(got) != 1 {
			t.Errorf("peerstore: routing table peer %s supports %v, want %s", p, got, p2p.KadProtocol)
		}
	}
}

// testProvide provides a fresh CID from provider and finds it from finder,
// which must not already hold the record, and returns what it found.
func testProvide(t *testing.T, provider, finder *p2p.Host) peer.AddrInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testCID(t, "bag "+t.Name())

	if err := provider.Provide(ctx, c); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	// The record must come from the network, not the finder's own store.
	local, err := finder.DHT().ProviderStore().GetProviders(ctx, c.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 0 {
		t.Fatalf("the finder already stores the record (%v); the test would prove nothing", local)
	}

	start := time.Now()
	found, err := finder.FindProviders(ctx, c, 1)
	if err != nil {
		t.Fatalf("FindProviders: %v", err)
	}
	if len(found) != 1 || found[0].ID != provider.ID() {
		t.Fatalf("FindProviders = %v, want %s", found, provider.ID())
	}
	t.Logf("provider found in %v at %v", time.Since(start), found[0].Addrs)
	return found[0]
}

func testCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// denyPeer is a connection gater that refuses every connection with one peer,
// in both directions.
type denyPeer peer.ID

func (d denyPeer) InterceptPeerDial(p peer.ID) bool                 { return p != peer.ID(d) }
func (d denyPeer) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return p != peer.ID(d) }
func (d denyPeer) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (d denyPeer) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return p != peer.ID(d)
}
func (d denyPeer) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
