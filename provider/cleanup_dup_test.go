package provider_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/testnet"
)

// registerIn registers an object of data (chunked as res) in bag, signed by
// the network's member.
func registerIn(ctx context.Context, t *testing.T, net *testnet.Network, bag chain.BagID, size int, res *chunker.Result) chain.DataObject {
	t.Helper()
	r, err := net.Client.Submit(ctx, net.Member, chain.MsgRegisterDataObjects{
		Bag: bag, Objects: []chain.ObjectSpec{{Size: uint64(size), ContentID: res.Root.String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, ok := chain.FindEvent[chain.ObjectsRegistered](r.Result.Events)
	if !ok || len(reg.Objects) != 1 {
		t.Fatal("no ObjectsRegistered event")
	}
	return reg.Objects[0]
}

// Two objects with the same bytes in two bags: X in bag 1 on provider 0
// alone, Y in bag 2 on provider 1 alone. Provider 1 holds every block of X
// (for Y) but not X: it does not prove possession of X, which a cleanup
// would otherwise take as a copy of X and drop provider 0's. When bag 1
// then moves to provider 1 while provider 0 is stopped, provider 1 records
// X from the blocks it holds for Y, with no peer to fetch from; then it
// proves possession of X.
func TestDuplicateContentIsNotACopy(t *testing.T) {
	net := newNet(t, testnet.Providers(2))
	ctx := testCtx(t)
	p0, p1 := net.Provider(0), net.Provider(1)
	r, err := net.Client.Submit(ctx, net.Member, chain.MsgCreateChannel{Member: net.MemberID})
	if err != nil {
		t.Fatal(err)
	}
	created, ok := chain.FindEvent[chain.ChannelCreated](r.Result.Events)
	if !ok {
		t.Fatal("no ChannelCreated event")
	}
	bag1, bag2 := net.Bag, created.Bag
	for _, mv := range []chain.MsgUpdateBagStorageBuckets{
		{Bag: bag1, Remove: []chain.StorageBucketID{p1.Bucket}},
		{Bag: bag2, Remove: []chain.StorageBucketID{p0.Bucket}},
	} {
		if _, err := net.Client.Submit(ctx, net.StorageLead, mv); err != nil {
			t.Fatal(err)
		}
	}
	data := randomBytes(t, 20<<10)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	x := registerIn(ctx, t, net, bag1, len(data), res)
	if err := net.Push(ctx, x, data, res, 0); err != nil {
		t.Fatal(err)
	}
	y := registerIn(ctx, t, net, bag2, len(data), res)
	if err := net.Push(ctx, y, data, res, 1); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "X and Y accepted", func() bool { return accepted(net, x)() && accepted(net, y)() })
	if p1.Holds(x.ID) {
		t.Fatal("provider 1 holds X before bag 1 is assigned to it (the test's premise)")
	}

	t.Run("blocks of another object prove nothing", func(t *testing.T) {
		ok, err := p0.Server().ConfirmPossession(ctx, p1.AddrInfo().ID, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Fatal("provider 1 proved possession of X with the blocks it holds for Y")
		}
	})

	t.Run("a moved object is recorded from local blocks", func(t *testing.T) {
		if err := p0.Kill(); err != nil {
			t.Fatal(err)
		}
		if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
			Bag: bag1, Add: []chain.StorageBucketID{p1.Bucket}, Remove: []chain.StorageBucketID{p0.Bucket},
		}); err != nil {
			t.Fatal(err)
		}
		testnet.Wait(t, "provider 1 holds X", holds(p1, x))
		readBack(t, net, p1, data, 4<<10)

		// X's proof now holds: provider 0, back, sees it.
		if err := p0.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		ok, err := p0.Server().ConfirmPossession(ctx, p1.AddrInfo().ID, x.ID)
		if err != nil || !ok {
			t.Fatalf("provider 1 holding X does not prove it: %v, %v", ok, err)
		}
	})
}
