package provider_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// TestGrantSlidesWithUpload: two providers whose contract grants last 8 s
// take a renter's contracts for one object, which it pipelines (the first
// forwards each chunk into the second's session), and the first takes a
// second contract, whose session is left idle in the end. The chunks come
// one every 2 s (a slow uplink) until after the grants' first end. Each
// chunk taken into a session, the forwarded ones too, slides its grant,
// its room's reservation and the session's expiry: the chunks past the
// first end are taken, the object binds on both providers and reads back,
// and the second contract's room is still counted after its first end.
// Left idle, that grant lapses one TTL after its last chunk: its session
// and chunks go, and the ledgers hold no room.
func TestGrantSlidesWithUpload(t *testing.T) {
	net := newNet(t, testnet.Providers(2))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ttl, size = 8 * time.Second, 256 << 10
	head, tail := net.Provider(0), net.Provider(1)
	ledgers := map[peer.ID]*contracts.Ledger{
		head.AddrInfo().ID: shortGrants(t, net, head, ttl),
		tail.AddrInfo().ID: shortGrants(t, net, tail, ttl),
	}
	h, renter := renterOn(t, ctx, net)
	pair := consignN(t, ctx, h, renter, net, size, 2)
	if pair[0].Contract.ProviderPeer != head.AddrInfo().ID {
		pair[0], pair[1] = pair[1], pair[0]
	}
	onHead, onTail := pair[0], pair[1]
	if onHead.Contract.ProviderPeer != head.AddrInfo().ID || onTail.Contract.ProviderPeer != tail.AddrInfo().ID {
		t.Fatalf("contracts with %s and %s, want one with each provider", onHead.Contract.ProviderPeer, onTail.Contract.ProviderPeer)
	}
	// The idle upload's contract: with whichever provider offered first.
	idle := consign(t, ctx, h, renter, net, size)
	idleProv, idleLedger := head, ledgers[idle.Contract.ProviderPeer]
	if idle.Contract.ProviderPeer == tail.AddrInfo().ID {
		idleProv = tail
	}
	stream := func(p *testnet.Provider) *store.Stream {
		st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	headSt, tailSt, idleSt := stream(head), stream(tail), stream(idleProv)
	pipe := func(body []byte) {
		t.Helper()
		r, err := headSt.PushPipeline(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
			Session: onHead.Grant.Session[:], Expiry: time.Now().Add(store.MaxSessionTTL),
			Forward: []store.Hop{{Peer: tail.AddrInfo().ID, Addrs: tail.AddrInfo().Addrs, Session: onTail.Grant.Session[:]}}})
		if err == nil && len(r.Failed) > 0 {
			err = r.Failed[0].Err
		}
		if err != nil || len(r.Receipts) != 2 {
			t.Fatalf("pipeline push at %v under grants that first ended %v and %v: %d receipts, %v",
				time.Now().UTC(), onHead.Grant.Expires.UTC(), onTail.Grant.Expires.UTC(), len(r.Receipts), err)
		}
	}
	pushIdle := func(body []byte) (sent, done time.Time) {
		t.Helper()
		sent = time.Now()
		_, err := idleSt.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: chunker.ChunkCID(body), Data: body,
			Session: idle.Grant.Session[:], Expiry: time.Now().Add(store.MaxSessionTTL)})
		if err != nil {
			t.Fatalf("push at %v under the grant that first ended %v: %v", time.Now().UTC(), idle.Grant.Expires.UTC(), err)
		}
		return sent, time.Now()
	}
	reserved := func(p *testnet.Provider, bound int) uint64 {
		n := uint64(bound * size)
		if p == idleProv {
			n += size
		}
		return n
	}

	const chunkSize = 16 << 10
	data := randomBytes(t, 12*chunkSize)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(i int) []byte { c := res.Chunks[i]; return data[c.Offset : c.Offset+int64(c.Size)] }
	// The grants' first end, as their answers said it (whole seconds), and
	// a second more: every grant has surely lapsed by then unless it slid.
	firstEnd := idle.Grant.Expires
	for _, cs := range pair {
		if cs.Grant.Expires.After(firstEnd) {
			firstEnd = cs.Grant.Expires
		}
	}
	firstEnd = firstEnd.Add(time.Second)
	pace := time.NewTicker(ttl / 4)
	defer pace.Stop()
	next := 0
	for past := false; !past; next++ {
		if next == len(res.Chunks) {
			t.Fatalf("all %d chunks pushed before the grants' first end %v", next, firstEnd.UTC())
		}
		past = time.Now().After(firstEnd)
		pipe(chunk(next))
		pushIdle(randomBytes(t, chunkSize))
		if past {
			break
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	for _, p := range []*testnet.Provider{head, tail} {
		if n, want := ledgers[p.AddrInfo().ID].Reserved(), reserved(p, 1); n != want {
			t.Fatalf("provider %d: %d bytes reserved after the grants' first end while the uploads go on, want %d", p.Index, n, want)
		}
	}

	// The rest of the object, on chain, bound on both providers.
	for next++; next < len(res.Chunks); next++ {
		pipe(chunk(next))
	}
	obj, err := net.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	for st, cs := range map[*store.Stream]contracts.Consigned{headSt: onHead, tailSt: onTail} {
		if err := st.Bind(ctx, store.BindRequest{Session: cs.Grant.Session[:], Bag: string(net.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}); err != nil {
			t.Fatalf("bind on %s after the grant's first end: %v", cs.Contract.ProviderPeer, err)
		}
	}
	readBack(t, net, head, data, chunkSize)
	readBack(t, net, tail, data, chunkSize)

	// The idle upload's last chunk: its grant, room and session last one
	// TTL from it, no longer.
	last := randomBytes(t, chunkSize)
	sent, done := pushIdle(last)
	for _, p := range []*testnet.Provider{head, tail} {
		if n, want := ledgers[p.AddrInfo().ID].Reserved(), reserved(p, 0); n != want {
			t.Fatalf("provider %d: %d bytes reserved after the object bound, want the idle grant's %d", p.Index, n, want)
		}
	}
	sid := store.ClientSessionID(idle.Grant.Session[:])
	sess, _, open, err := idleProv.Store().SessionInfo(sid)
	if err != nil || !open {
		t.Fatalf("the idle upload's session: open %v, %v", open, err)
	}
	if lo, hi := sent.Add(ttl-time.Second), done.Add(ttl); sess.Expiry.Before(lo) || sess.Expiry.After(hi) {
		t.Fatalf("the session expires %v; want one TTL after its last chunk, %v to %v", sess.Expiry.UTC(), lo.UTC(), hi.UTC())
	}
	testnet.Wait(t, "the idle grant's session to end", func() bool {
		_, _, open, err := idleProv.Store().SessionInfo(sid)
		return err == nil && !open
	})
	// The session's record goes in one index write and its chunks right
	// after (collect): wait for them.
	testnet.Wait(t, "the idle session's chunk to go once its grant lapsed", func() bool {
		ok, err := idleProv.Store().Has(chunker.ChunkCID(last))
		return err == nil && !ok
	})
	testnet.Wait(t, "the idle grant's room to come back", func() bool { return idleLedger.Reserved() == 0 })
	for _, p := range []*testnet.Provider{head, tail} {
		if ok, err := p.Store().Has(res.Chunks[0].CID); err != nil || !ok {
			t.Errorf("provider %d: the bound object's chunk is gone (%v, %v)", p.Index, ok, err)
		}
	}
}
