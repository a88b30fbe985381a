package provider

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
)

// storedGrants is fixedGrants recording the figures each ExtendGrant was
// given: the session's total bytes and those of them on disk.
type storedGrants struct {
	*fixedGrants
	mu    sync.Mutex
	calls [][2]uint64
}

func (g *storedGrants) ExtendGrant(ctx context.Context, session []byte, total, stored uint64) (contracts.Grant, error) {
	g.mu.Lock()
	g.calls = append(g.calls, [2]uint64{total, stored})
	g.mu.Unlock()
	return g.fixedGrants.ExtendGrant(ctx, session, total, stored)
}

func (g *storedGrants) recorded() [][2]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][2]uint64(nil), g.calls...)
}

// The bytes a session holds on disk reach the contract's grant as the
// store handler read them, under the session's lock, with the session's
// total: the authorizer does not read the block store again per chunk
// (it is handed the figure, and takes it as given).
func TestGrantGetsStoredBytesFromHandler(t *testing.T) {
	net := p2ptestnet.New(t, 2)
	rh := net.Host(0)
	const bag = chain.BagID("dynamic:channel:1")
	var sess [16]byte
	copy(sess[:], bytes.Repeat([]byte{4}, 16))
	grants := &storedGrants{fixedGrants: &fixedGrants{m: map[[16]byte]contracts.Grant{sess: {Session: sess, Bag: bag, MaxBytes: 1 << 30,
		Expires: time.Now().Add(time.Hour), Renter: rh.ID(), RenterKey: rh.Libp2p().Peerstore().PubKey(rh.ID())}}}}
	p := newHopProvider(t, net.Host(1), bag, grants)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, rh.Libp2p(), p.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, second := bytes.Repeat([]byte("first"), 4<<10), bytes.Repeat([]byte("second"), 3<<10)
	for _, data := range [][]byte{first, second} {
		if _, err := st.Push(ctx, store.ChunkPush{Bag: string(bag), CID: chunker.ChunkCID(data), Data: data, Session: sess[:],
			Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	a, b := uint64(len(first)), uint64(len(second))
	want := [][2]uint64{{a, 0}, {a + b, a}}
	if got := grants.recorded(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("grant extended with (total, stored) %v; want %v", got, want)
	}

	// The figure given is the one used: the authorizer reads no store of
	// its own (this session holds both chunks on disk, not 7 bytes).
	if _, err := p.auth.AuthorizeUploadSession(ctx, string(bag), sess[:], a+b+100, 7); err != nil {
		t.Fatal(err)
	}
	if got := grants.recorded(); len(got) != 3 || got[2] != [2]uint64{a + b + 100, 7} {
		t.Fatalf("grant extended with %v; want (%d, 7) last", got, a+b+100)
	}
}
