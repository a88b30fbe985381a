package provider_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestUploadPendingCountsStoredOnly: the room a contract reserves stays
// pending against the provider's free disk until its session's chunks are
// in the block store. A chunk the provider agreed to and then refused (its
// bytes do not match its CID) never counts as received; a chunk stored
// counts as soon as it landed, before its receipt is answered, not only
// once the next is asked.
func TestUploadPendingCountsStoredOnly(t *testing.T) {
	net := newNet(t, testnet.Providers(1))
	ctx := testCtx(t)
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	ledger, _ := grantsWith(t, net, p)
	cs := consign(t, ctx, h, renter, net, 256<<10)
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	push := func(cid, body []byte) error {
		_, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(cid), Data: body,
			Session: cs.Grant.Session[:], Expiry: time.Now().Add(time.Hour)})
		return err
	}
	held := ledger.Reserved()
	if held == 0 || ledger.Pending() != held {
		t.Fatalf("at CONSIGN %d pending of %d reserved, want all of it", ledger.Pending(), held)
	}

	bad := bytes.Repeat([]byte("not what the CID says"), 2<<10)
	if err := push([]byte("another chunk"), bad); err == nil {
		t.Fatal("a chunk whose bytes do not match its CID was taken")
	}
	if n := ledger.Pending(); n != held {
		t.Fatalf("after a refused chunk %d pending of %d reserved, want all of it", n, held)
	}
	first := bytes.Repeat([]byte("first"), 8<<10)
	if err := push(first, first); err != nil {
		t.Fatalf("push: %v", err)
	}
	if n, want := ledger.Pending(), ledger.Reserved()-uint64(len(first)); n != want {
		t.Fatalf("after the first chunk %d pending, want %d: the reservation less the chunk, stored", n, want)
	}
	second := bytes.Repeat([]byte("second"), 8<<10)
	if err := push(second, second); err != nil {
		t.Fatalf("push: %v", err)
	}
	if n, want := ledger.Pending(), ledger.Reserved()-uint64(len(first)+len(second)); n != want {
		t.Fatalf("after the second chunk %d pending, want %d: the reservation less both chunks, stored", n, want)
	}
	if err := push(second, second); err != nil {
		t.Fatalf("push again: %v", err)
	}
	if n, want := ledger.Pending(), ledger.Reserved()-uint64(len(first)+len(second)); n != want {
		t.Fatalf("after the second chunk sent again %d pending, want %d: a chunk the session holds counts once", n, want)
	}
}
