package provider_test

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/satchel-net/satchel/p2p"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/testnet"
)

// TestOperatorRecordsOutlastSybilFlood: provider 1, the active operator of
// a storage bucket as the chain says, announces bags to provider 0, whose
// DHT keeps at most 60 records of others; then 20 fresh peer IDs flood
// provider 0 with 4 records each. Provider 0 names the chain's operators
// as its priority peers, so every record of provider 1 stays and provider
// 2 finds it for every bag; the flood fills only what is left.
func TestOperatorRecordsOutlastSybilFlood(t *testing.T) {
	limits := p2p.ProviderLimits{Records: 60, PerPeer: 40}
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.HostOptions = func(i int) []p2p.Option {
			if i == 0 {
				return []p2p.Option{p2p.WithProviderLimits(limits)}
			}
			return nil
		}
	}))
	ctx := testCtx(t)
	node, op, finder := net.Provider(0), net.Provider(1), net.Provider(2)
	testnet.Wait(t, "provider 1 named an operator on provider 0", func() bool { return node.Server().RecordPriority(op.AddrInfo().ID) })

	bags := make([]cid.Cid, 20)
	keys := make([][]byte, len(bags))
	for i := range bags {
		bags[i] = p2p.BagKey(fmt.Sprintf("dynamic:channel:%d", 1000+i))
		keys[i] = bags[i].Hash()
	}
	p2ptestnet.AnnounceProviders(ctx, t, op.Host().Libp2p(), node.Host().ID(), keys)
	for i := range 20 {
		sybil, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sybil.Close() })
		if err := sybil.Connect(ctx, node.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		flood := make([][]byte, 4)
		for j := range flood {
			flood[j] = p2p.BagKey(fmt.Sprintf("dynamic:channel:%d", 10000+4*i+j)).Hash()
		}
		p2ptestnet.AnnounceProviders(ctx, t, sybil, node.Host().ID(), flood)
	}

	if got := node.Host().ProviderRecords(); got > limits.Records {
		t.Fatalf("provider 0 keeps %d records of others, more than %d", got, limits.Records)
	}
	store := node.Host().DHT().ProviderStore()
	for _, k := range keys {
		got, err := store.GetProviders(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !hasPeer(got, op.AddrInfo().ID) {
			t.Fatalf("after the flood provider 0 lost the operator's record of %x", k)
		}
	}
	for _, b := range bags {
		found, err := finder.Host().FindProviders(ctx, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !hasPeer(found, op.AddrInfo().ID) {
			t.Fatalf("provider 2 finds %v for %s, want provider 1", found, b)
		}
	}
}

func hasPeer(infos []peer.AddrInfo, p peer.ID) bool {
	for _, ai := range infos {
		if ai.ID == p {
			return true
		}
	}
	return false
}
