package testnet_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestProviderRefusesWhatTheChainDoesNot pushes chunks that the chain does
// not authorise to a real provider over the real store protocol: each push
// is refused with its reason, and nothing is stored.
func TestProviderRefusesWhatTheChainDoesNot(t *testing.T) {
	net := testnet.New(t, testnet.Providers(2))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := net.Provider(0)

	data := bytes.Repeat([]byte("satchel "), 8<<10) // 64 KiB, one chunk
	res, err := chunker.Sum(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	chunk := res.Chunks[0]

	// A second channel's bag, taken off provider 0's bucket by the lead.
	r, err := net.Client.Submit(ctx, net.Member, chain.MsgCreateChannel{Member: net.MemberID})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := chain.FindEvent[chain.ChannelCreated](r.Result.Events)
	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{Bag: ch.Bag, Remove: []chain.StorageBucketID{p.Bucket}}); err != nil {
		t.Fatal(err)
	}
	r, err = net.Client.Submit(ctx, net.Member, chain.MsgRegisterDataObjects{Bag: ch.Bag, Objects: []chain.ObjectSpec{{Size: uint64(len(data)), ContentID: res.Root.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := chain.FindEvent[chain.ObjectsRegistered](r.Result.Events)
	elsewhere := reg.Objects[0]

	// An object registered in the network's bag, for the bad-bytes case.
	obj, err := net.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}

	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, p.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	corrupt := bytes.Clone(data)
	corrupt[100] ^= 1
	for _, tc := range []struct {
		name string
		push store.ChunkPush
	}{
		{"object not on chain", store.ChunkPush{Bag: string(net.Bag), Object: 999, CID: chunk.CID, Data: data}},
		{"object in another bag", store.ChunkPush{Bag: string(net.Bag), Object: uint64(elsewhere.ID), CID: chunk.CID, Data: data}},
		{"bag not assigned to this bucket", store.ChunkPush{Bag: string(ch.Bag), Object: uint64(elsewhere.ID), CID: chunk.CID, Data: data}},
		{"bytes not matching the CID", store.ChunkPush{Bag: string(net.Bag), Object: uint64(obj.ID), CID: chunk.CID, Data: corrupt}},
	} {
		_, err := st.Push(ctx, tc.push)
		var refused *store.RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("%s: push = %v; want a refusal", tc.name, err)
			continue
		}
		t.Logf("%s: refused: %s", tc.name, refused.Reason)
		if has, _ := p.Store().Has(chunk.CID); has {
			t.Fatalf("%s: the provider stored the chunk", tc.name)
		}
	}
	if s := p.Store().Stats(); s.Blocks != 0 || s.Objects != 0 {
		t.Fatalf("provider store after refusals: %+v; want empty", s)
	}
}
