package provider_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestGrantSlidesWithUpload: a provider whose contract grants last 8 s
// takes two contracts of one renter, whose chunks then come one every 2 s
// (a slow uplink) until after both grants' first end. Each chunk slides
// its grant, its room's reservation and its session's expiry: the chunks
// pushed past the first end are taken, the first upload binds and reads
// back, and the second grant's room is still counted after its first end.
// Left idle, the second grant lapses one TTL after its last chunk: its
// session and chunks go and the ledger holds no room.
func TestGrantSlidesWithUpload(t *testing.T) {
	net := newNet(t, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := net.Provider(0)
	h, renter := renterOn(t, ctx, net)
	const ttl, size = 8 * time.Second, 256 << 10
	ledger := shortGrants(t, net, p, ttl)
	bound := consign(t, ctx, h, renter, net, size)
	idle := consign(t, ctx, h, renter, net, size)
	st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	push := func(cs contracts.Consigned, body []byte) {
		t.Helper()
		_, err := st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
			Session: cs.Grant.Session[:], Expiry: time.Now().Add(store.MaxSessionTTL)})
		if err != nil {
			t.Fatalf("push at %v under the grant that first ended %v: %v", time.Now().UTC(), cs.Grant.Expires.UTC(), err)
		}
	}

	const chunkSize = 16 << 10
	data := randomBytes(t, 12*chunkSize)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	// The grants' first end, as their answers said it (whole seconds), and
	// a second more: the provider's grant has surely lapsed by then unless
	// it slid.
	firstEnd := bound.Grant.Expires
	if idle.Grant.Expires.After(firstEnd) {
		firstEnd = idle.Grant.Expires
	}
	firstEnd = firstEnd.Add(time.Second)
	pace := time.NewTicker(ttl / 4)
	defer pace.Stop()
	next := 0
	var idleSent, idleDone time.Time
	for past := false; !past; {
		if next == len(res.Chunks) {
			t.Fatalf("all %d chunks pushed before the grants' first end %v", next, firstEnd.UTC())
		}
		past = time.Now().After(firstEnd)
		c := res.Chunks[next]
		push(bound, data[c.Offset:c.Offset+int64(c.Size)])
		next++
		idleSent = time.Now()
		push(idle, randomBytes(t, chunkSize))
		idleDone = time.Now()
		if past {
			break
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if n := ledger.Reserved(); n != 2*size {
		t.Fatalf("%d bytes reserved after the grants' first end while both uploads go on, want %d", n, 2*size)
	}

	// The rest of the first upload, its object on chain, its BIND.
	for ; next < len(res.Chunks); next++ {
		c := res.Chunks[next]
		push(bound, data[c.Offset:c.Offset+int64(c.Size)])
	}
	obj, err := net.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, store.BindRequest{Session: bound.Grant.Session[:], Bag: string(net.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}); err != nil {
		t.Fatalf("bind after the grant's first end: %v", err)
	}
	readBack(t, net, p, data, chunkSize)

	// The second upload's last chunk: its grant, room and session last one
	// TTL from it, no longer.
	idleSent = time.Now()
	last := randomBytes(t, chunkSize)
	push(idle, last)
	idleDone = time.Now()
	if n := ledger.Reserved(); n != size {
		t.Fatalf("%d bytes reserved after the first upload bound, want the live second grant's %d", n, size)
	}
	sid := store.ClientSessionID(idle.Grant.Session[:])
	sess, _, open, err := p.Store().SessionInfo(sid)
	if err != nil || !open {
		t.Fatalf("the idle upload's session: open %v, %v", open, err)
	}
	if lo, hi := idleSent.Add(ttl-time.Second), idleDone.Add(ttl); sess.Expiry.Before(lo) || sess.Expiry.After(hi) {
		t.Fatalf("the session expires %v; want one TTL after its last chunk, %v to %v", sess.Expiry.UTC(), lo.UTC(), hi.UTC())
	}
	testnet.Wait(t, "the idle grant's session to end", func() bool {
		_, _, open, err := p.Store().SessionInfo(sid)
		return err == nil && !open
	})
	if ok, err := p.Store().Has(chunker.ChunkCID(last)); err != nil || ok {
		t.Errorf("the idle session's chunk is still held (%v, %v) after its grant lapsed", ok, err)
	}
	testnet.Wait(t, "the idle grant's room to come back", func() bool { return ledger.Reserved() == 0 })
	if ok, err := p.Store().Has(res.Chunks[0].CID); err != nil || !ok {
		t.Errorf("the bound object's chunk is gone (%v, %v)", ok, err)
	}
}
