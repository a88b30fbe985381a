package provider_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// expectCleanupWait checks, after the network's bag moved, that provider 0
// keeps obj, waiting with fewer confirmations than it needs.
func expectCleanupWait(t *testing.T, net *testnet.Network, obj chain.DataObject) {
	t.Helper()
	p0 := net.Provider(0)
	testnet.Wait(t, "provider 0 waiting for confirmations", func() bool {
		return p0.Server().Status().CleanupWaiting == 1
	})
	if !p0.Holds(obj.ID) {
		t.Fatal("provider 0 removed the object without two distinct operators proving they hold it")
	}
	if got := counter(t, p0.Registry(), "satchel_provider_cleanup_objects_total", nil); got != 0 {
		t.Fatalf("provider 0 removed %v objects", got)
	}
}

// One operator (one role account) running two of the bag's buckets through
// two workers — even under two peer IDs that both hold the data — is one
// copy: it confirms a cleanup once.
func TestCleanupCountsOperatorsNotPeers(t *testing.T) {
	net := newNet(t)
	ctx := testCtx(t)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	p0, p1, p2 := net.Provider(0), net.Provider(1), net.Provider(2)

	// Provider 1's operator gets a second worker (same role account),
	// takes a second bucket with it and names provider 2's peer (which
	// still holds the data) as its node.
	res, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgAddWorker{Group: chain.StorageGroup, Account: p1.Key.Account()})
	if err != nil {
		t.Fatal(err)
	}
	added, ok := chain.FindEvent[chain.WorkerAdded](res.Result.Events)
	if !ok {
		t.Fatal("no WorkerAdded event")
	}
	w := added.Worker
	res, err = net.Client.Submit(ctx, net.StorageLead, chain.MsgCreateStorageBucket{
		AcceptingNewBags: true, ObjectsLimit: 100_000, SizeLimit: 1 << 30, InviteWorker: &w,
	})
	if err != nil {
		t.Fatal(err)
	}
	created, ok := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
	if !ok {
		t.Fatal("no StorageBucketCreated event")
	}
	b3 := created.Bucket
	if _, err := net.Client.Submit(ctx, p1.Key, chain.MsgAcceptStorageBucketInvitation{Worker: w, Bucket: b3}); err != nil {
		t.Fatal(err)
	}
	ai := p2.AddrInfo()
	var addrs []string
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	if _, err := net.Client.Submit(ctx, p1.Key, chain.MsgSetStorageOperatorMetadata{
		Worker: w, Bucket: b3, Metadata: chain.StorageOperatorMetadata{PeerID: ai.ID.String(), Multiaddrs: addrs},
	}); err != nil {
		t.Fatal(err)
	}
	// The bag now lives in buckets 1 and 3, both run by one operator.
	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: net.Bag, Add: []chain.StorageBucketID{b3}, Remove: []chain.StorageBucketID{p0.Bucket, p2.Bucket},
	}); err != nil {
		t.Fatal(err)
	}
	expectCleanupWait(t, net, obj)
}

// lyingBlocks claims every block and holds none.
type lyingBlocks struct{}

func (lyingBlocks) Has(cid.Cid) (bool, error) { return true, nil }
func (lyingBlocks) Get(c cid.Cid) ([]byte, error) {
	return bytes.Repeat([]byte{0x5a}, 4<<10), nil
}

type servesAll struct{}

func (servesAll) Serves(context.Context, cid.Cid) bool { return true }

// A provider of the bag that answers HAVE for every block but cannot send
// them does not confirm a cleanup: possession is proven with sampled blocks
// verified against their CIDs.
func TestCleanupNeedsProofOfPossession(t *testing.T) {
	net := newNet(t)
	ctx := testCtx(t)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 40<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	p0, p2 := net.Provider(0), net.Provider(2)

	// Provider 2's peer ID comes back as a liar that holds nothing.
	if err := p2.Kill(); err != nil {
		t.Fatal(err)
	}
	key, err := p2p.LoadOrCreateIdentity(filepath.Join(p2.Dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	liar, err := p2p.New(ctx, p2p.WithIdentity(key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liar.Close() })
	fh := fetch.NewHandler(lyingBlocks{}, servesAll{})
	fh.Register(liar.Protocol())
	t.Cleanup(func() { fh.Close() })
	if err := liar.Connect(ctx, p0.AddrInfo()); err != nil {
		t.Fatal(err)
	}

	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: net.Bag, Remove: []chain.StorageBucketID{p0.Bucket},
	}); err != nil {
		t.Fatal(err)
	}
	expectCleanupWait(t, net, obj)
}
