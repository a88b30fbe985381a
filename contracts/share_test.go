package contracts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/topics"
)

// TestMemberShareLeavesRoom: on a real chain whose largest data object is
// 4 MiB, a provider whose Ledger sees 10 MiB of free disk refuses member
// A's 10 MiB proposal as larger than any object (MALFORMED), takes one
// 4 MiB contract of A's and refuses a second (NO_ROOM: A's share is a
// quarter of the room, or one largest object), so a second member's 1 KiB
// proposal still gets an offer and is consigned. Before the share, A's
// 10 MiB reserved the whole disk for an hour and B was refused NO_ROOM.
func TestMemberShareLeavesRoom(t *testing.T) {
	const provider, hostA, hostB = 0, 1, 2
	w := newWorld(t, 3, 1, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := w.chain.Submit(ctx, w.lead, chain.MsgSetMaxDataObjectSize{Size: 4 << 20})
	must(t, err)
	bucket := w.provs[provider].Bucket
	w.wrapRoom = func(Room) Room {
		return NewLedger(w.chain, bucket, func() (uint64, error) { return 10 << 20, nil })
	}

	renterA := w.renterAt(hostA)
	keyB, memberB, bagB := w.newMember(ctx, "second")
	renterB := w.renterOf(hostB, keyB, memberB)
	req := func(bag chain.BagID, size uint64) Request {
		r := w.request(size, 30*day, 1)
		r.Bag, r.Window, r.Enough = bag, 5*time.Second, 1
		return r
	}
	var ts []topics.Topic
	for _, size := range []uint64{10 << 20, 4 << 20, 1 << 10} {
		tp, err := req(w.bag, size).Topic()
		must(t, err)
		ts = append(ts, tp)
	}
	w.responder(provider, "", ts...)
	for _, tp := range ts {
		w.waitTopicPeers(hostA, tp, 1)
		w.waitTopicPeers(hostB, tp, 1)
	}
	refused := func(r *Renter, rq Request, want error) {
		t.Helper()
		n, err := r.Negotiate(ctx, rq)
		if !errors.Is(err, ErrNoOffers) || n == nil || len(n.Offers) != 1 || !errors.Is(n.Offers[0].Err, want) {
			t.Fatalf("%d bytes: %v (%+v); want no offers, the provider refusing with %v", rq.Size, err, n, want)
		}
		t.Logf("%d bytes refused: %v", rq.Size, n.Offers[0].Err)
	}

	refused(renterA.renter, req(w.bag, 10<<20), ErrMalformed)
	if n, err := renterA.renter.Negotiate(ctx, req(w.bag, 4<<20)); err != nil || len(n.Contracts) != 1 {
		t.Fatalf("member A's first 4 MiB: %v; want one contract", err)
	}
	refused(renterA.renter, req(w.bag, 4<<20), ErrNoRoom)
	n, err := renterB.Negotiate(ctx, req(bagB, 1<<10))
	if err != nil || len(n.Contracts) != 1 {
		t.Fatalf("member B's 1 KiB beside member A's share: %v (%+v); want one contract", err, n)
	}
}

// newMember creates a member controlled by a new key, with a channel whose
// bag the chain's dynamic bag policy places on the buckets, as any account
// may.
func (w *world) newMember(ctx context.Context, handle string) (chain.Key, chain.MemberID, chain.BagID) {
	w.t.Helper()
	key, err := chain.GenerateKey()
	must(w.t, err)
	res, err := w.chain.Submit(ctx, key, chain.MsgCreateMember{Handle: handle})
	must(w.t, err)
	m, _ := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	res, err = w.chain.Submit(ctx, key, chain.MsgCreateChannel{Member: m.Member, Title: handle})
	must(w.t, err)
	ch, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	return key, m.Member, ch.Bag
}

// renterOf starts a renter for member, controlled by key, on host i.
func (w *world) renterOf(i int, key chain.Key, member chain.MemberID) *Renter {
	w.t.Helper()
	st, err := OpenStore(w.t.TempDir())
	must(w.t, err)
	h := w.net.Host(i)
	r := NewRenter(h, NewGossip(h, w.chain, quiet()), key, member, w.chain, st, quiet())
	w.t.Cleanup(func() { _ = r.Close(); _ = st.Close() })
	return r
}
