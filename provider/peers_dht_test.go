package provider

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
)

// TestPeersDHTFloodBounded: announcing a bag key costs nothing, so 30
// hosts announce one to the node a provider looks the bag up on. The
// provider's peer list names the chain's operator first and at most
// maxDHTPeers of the others.
func TestPeersDHTFloodBounded(t *testing.T) {
	const flood = 30
	net := p2ptestnet.New(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, finder := net.Host(0), net.Host(1)
	bag := chain.BagID("dynamic:channel:7")
	key := p2p.BagKey(string(bag)).Hash()
	for range flood {
		sybil, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sybil.Close() })
		if err := sybil.Connect(ctx, peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()}); err != nil {
			t.Fatal(err)
		}
		p2ptestnet.AnnounceProviders(ctx, t, sybil, node.ID(), [][]byte{key})
	}
	if found, err := finder.FindProviders(ctx, p2p.BagKey(string(bag)), 0); err != nil || len(found) <= maxDHTPeers {
		t.Fatalf("the DHT names %d providers (%v), want more than %d for the test to mean something", len(found), err, maxDHTPeers)
	}

	operator := chainPeer{ID: node.ID()}
	f := &peerFinder{h: finder, cache: map[chain.BagID]cachedPeers{}}
	got := f.withDHT(ctx, bag, []chainPeer{operator})
	if len(got) == 0 || got[0] != operator.ID {
		t.Fatalf("peers %v, want the chain's operator %s first", got, operator.ID)
	}
	if len(got) > 1+maxDHTPeers {
		t.Fatalf("%d peers, want at most the operator and %d the DHT names", len(got), maxDHTPeers)
	}
	seen := map[peer.ID]bool{}
	for _, p := range got {
		if seen[p] || p == finder.ID() {
			t.Fatalf("peers %v name %s twice or the provider itself", got, p)
		}
		seen[p] = true
	}
}
