package p2p_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// TestProviderPrioritySybilFlood: on a mocknet, a storage operator announces
// its bags to a node, then a swarm of fresh peer IDs floods the node with a
// few records each, more than it keeps. With the operator named by
// SetProviderPriority every one of its records stays, and another node's
// FindProviders finds it for every bag; without, the flood squeezes the
// operator (the gap priority closes). Either way the node keeps exactly its
// bound, and counts exactly the records it serves.
func TestProviderPrioritySybilFlood(t *testing.T) {
	for _, priority := range []bool{true, false} {
		t.Run(fmt.Sprintf("priority=%v", priority), func(t *testing.T) {
			limits := p2p.ProviderLimits{Records: 60, PerPeer: 40}
			net := testnet.NewMock(t, 2, 0, testnet.WithHostOptions(func(i int) []p2p.Option {
				if i == 0 {
					return []p2p.Option{p2p.WithProviderLimits(limits)}
				}
				return nil
			}))
			// The operator and the Sybils are bare hosts, no DHT servers:
			// the finder can learn of the operator's bags only from node.
			node, finder := net.Host(0), net.Host(1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			operator := mockPeer(t, net, node, 0)
			if priority {
				node.SetProviderPriority(func(p peer.ID) bool { return p == operator.ID() })
			}

			bags := make([]cid.Cid, 20)
			keys := make([][]byte, len(bags))
			for i := range bags {
				bags[i] = p2p.BagKey(fmt.Sprintf("dynamic:channel:%d", i))
				keys[i] = bags[i].Hash()
			}
			testnet.AnnounceProviders(ctx, t, operator, node.ID(), keys)
			if held := heldKeys(ctx, t, node, operator.ID(), keys); held != len(keys) {
				t.Fatalf("the node keeps %d of the operator's %d records before any flood", held, len(keys))
			}
			sybils := make([]peer.ID, 40)
			sybilKeys := make([][][]byte, len(sybils))
			for i := range sybils {
				h := mockPeer(t, net, node, 1+i)
				sybils[i] = h.ID()
				sybilKeys[i] = floodProviders(ctx, t, h, node, fmt.Sprint("sybil ", i), 3)
			}

			held := heldKeys(ctx, t, node, operator.ID(), keys)
			served := held
			for i, p := range sybils {
				served += heldKeys(ctx, t, node, p, sybilKeys[i])
			}
			if got := node.ProviderRecords(); got != limits.Records || served != got {
				t.Fatalf("after the flood the node counts %d records and serves %d; want both its bound, %d", got, served, limits.Records)
			}
			if !priority {
				if held == len(keys) {
					t.Fatal("without priority the flood left the operator every record: the test's premise fails")
				}
				return
			}
			if held != len(keys) {
				t.Fatalf("the flood took %d of the priority operator's %d records", len(keys)-held, len(keys))
			}
			for _, b := range bags {
				found, err := finder.FindProviders(ctx, b, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !containsPeer(found, operator.ID()) {
					t.Fatalf("FindProviders(%s) = %v after the flood, want the operator %s", b, found, operator.ID())
				}
			}
		})
	}
}

// mockPeer adds a bare host with a fresh identity to net's mocknet,
// connected to node only.
func mockPeer(t *testing.T, net *testnet.Network, node *p2p.Host, i int) host.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A loopback address, which the DHT's address filter keeps in the
	// provider records it serves (testnet's hosts use 40000 and up).
	h, err := net.Mocknet().AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 41000+i)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Mocknet().LinkPeers(h.ID(), node.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Mocknet().ConnectPeers(h.ID(), node.ID()); err != nil {
		t.Fatal(err)
	}
	return h
}
