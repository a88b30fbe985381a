package testnet_test

import (
	"context"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/testnet"
)

// A network is wired by the chain: each provider operates its bucket,
// the bag is in every bucket, every provider publishes its peer ID on
// chain and announces the bag on the DHT; the storage lead invited the
// member, as a network with open registration closed would. Started again
// on the same directory it is the same network.
func TestStartAndResume(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.SetupTimeout)
	defer cancel()
	net, err := testnet.Start(ctx, dir, testnet.Config{Providers: 2})
	if err != nil {
		t.Fatal(err)
	}
	bag, err := net.Client.Bag(ctx, net.Bag)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := net.Client.Member(ctx, net.MemberID); err != nil || !m.InvitedByLead || m.Controller != net.Member.Account() {
		t.Errorf("member %d: %+v, %v; want %s's, invited by the storage lead", net.MemberID, m, err, net.Member.Account())
	}
	var peers []peer.ID
	for _, p := range net.Providers() {
		if !bag.HasStorageBucket(p.Bucket) {
			t.Errorf("bag %s is not in provider %d's bucket %d", net.Bag, p.Index, p.Bucket)
		}
		peers = append(peers, p.AddrInfo().ID)
		testnet.Wait(t, "operator metadata on chain", func() bool {
			b, err := net.Client.StorageBucket(ctx, p.Bucket)
			return err == nil && b.Metadata != nil && b.Metadata.PeerID == p.AddrInfo().ID.String() && len(b.Metadata.Multiaddrs) > 0
		})
	}
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, net.Provider(0).AddrInfo()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "both providers found on the DHT", func() bool {
		found, _ := h.FindProviders(ctx, p2p.BagKey(string(net.Bag)), 0)
		n := 0
		for _, ai := range found {
			if slices.Contains(peers, ai.ID) {
				n++
			}
		}
		return n == 2
	})
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := testnet.Start(ctx, dir, testnet.Config{Providers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Bag != net.Bag || again.Member.Account() != net.Member.Account() {
		t.Errorf("resumed network has bag %s member %s, want %s %s", again.Bag, again.Member.Account(), net.Bag, net.Member.Account())
	}
	for i, p := range again.Providers() {
		if p.AddrInfo().ID != peers[i] || p.Bucket != net.Provider(i).Bucket {
			t.Errorf("provider %d came back as %s bucket %d", i, p.AddrInfo().ID, p.Bucket)
		}
	}
	if _, err := testnet.Start(ctx, dir, testnet.Config{Providers: 3}); err == nil {
		t.Error("a network of 2 providers started as 3")
	}
	objs, err := again.Client.Objects(ctx, again.Bag)
	if err != nil || len(objs) != 0 {
		t.Errorf("objects = %v, %v", objs, err)
	}
}
