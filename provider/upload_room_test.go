package provider_test

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestUploadReservationGrows: a provider whose ledger reserves a 64 KiB
// window takes a 256 KiB upload under a contract: CONSIGN reserves one
// window, each chunk pushed grows the reservation ahead of the bytes, the
// whole upload is taken and bound, and BIND gives the room back and keeps
// the contract (stored open at CONSIGN) with its object, so it is no
// longer deleted when its grant would have lapsed.
func TestUploadReservationGrows(t *testing.T) {
	const chunk, chunks = 64 << 10, 4
	net := newNet(t, testnet.Providers(1))
	ctx := testCtx(t)
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	ledger, cst := grantsWith(t, net, p, contracts.WithReserveWindow(chunk))
	cs := consign(t, ctx, h, renter, net, chunk*chunks)
	if n := ledger.Reserved(); n != chunk {
		t.Fatalf("%d bytes reserved at CONSIGN, want one 64 KiB window", n)
	}
	if _, open, err := cst.Open(cs.Contract.ID, cs.Contract.Provider); err != nil || !open {
		t.Fatalf("the consigned contract is not stored as an open upload (%v)", err)
	}
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, chunk*chunks)
	_, _ = rand.Read(data)
	for i := range chunks {
		body := data[i*chunk : (i+1)*chunk]
		if _, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
			Session: cs.Grant.Session[:]}); err != nil {
			t.Fatalf("chunk %d under a grant that reserved one window: %v", i, err)
		}
		if n, want := ledger.Reserved(), uint64(min((i+2)*chunk, chunks*chunk)); n != want {
			t.Fatalf("after chunk %d: %d bytes reserved, want %d (one window ahead, at most the object)", i, n, want)
		}
		if st := p.Server().Status().Contracts; st == nil || st.ReservedBytes != ledger.Reserved() {
			t.Fatalf("status page contracts %+v, want %d bytes reserved", st, ledger.Reserved())
		}
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunk))
	if err != nil || len(res.Chunks) != chunks {
		t.Fatalf("chunking: %v", err)
	}
	obj, err := net.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, store.BindRequest{Session: cs.Grant.Session[:], Bag: string(net.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if n := ledger.Reserved(); n != 0 {
		t.Errorf("%d bytes reserved after BIND, want 0", n)
	}
	if _, open, err := cst.Open(cs.Contract.ID, cs.Contract.Provider); err != nil || open {
		t.Errorf("the bound contract is still an open upload (%v)", err)
	}
	if got, ok, err := cst.Bound(cs.Contract.ID, cs.Contract.Provider); err != nil || !ok || got != obj.ID {
		t.Errorf("the bound contract's object: %d %v %v, want %d", got, ok, err, obj.ID)
	}
}
