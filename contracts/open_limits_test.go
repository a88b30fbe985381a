package contracts

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/topics"
)

// TestOneMemberOpenContractsBounded (secreview, session 14): one member,
// following the protocol, consigns 1-byte contracts lasting the maximum
// 3650 days and uploads nothing. Before, nothing bounded how many: each
// was stored for ten years, held a grant and a reservation. Now the
// provider takes MaxOpenPerMember of them (the next is refused BUSY at the
// offer, nothing stored), and deletes every one whose grant lapsed
// unbound, while one whose upload was bound is kept. The prune reads only
// the contracts due.
func TestOneMemberOpenContractsBounded(t *testing.T) {
	long := topics.New(topics.Low, topics.High, topics.High, topics.High)
	w := newWorld(t, 2, 1, 1, 0)
	prov := w.responder(0, "", long)
	w.waitTopicPeers(1, long, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req := func() Request {
		r := w.request(1, 3650*day, 1)
		r.Enough = 1
		return r
	}
	start := time.Now()
	var made []Consigned
	for i := range MaxOpenPerMember {
		neg, err := renter.renter.Negotiate(ctx, req())
		if err != nil || len(neg.Contracts) != 1 {
			t.Fatalf("negotiation %d: %v", i, err)
		}
		made = append(made, neg.Contracts[0])
	}
	perContract := time.Since(start) / MaxOpenPerMember
	neg, err := renter.renter.Negotiate(ctx, req())
	if !errors.Is(err, ErrNoOffers) || neg == nil || len(neg.Offers) != 1 || !errors.Is(neg.Offers[0].Err, ErrBusy) {
		t.Fatalf("contract %d of one member: %v (%+v); want no offers, the provider refusing BUSY", MaxOpenPerMember+1, err, neg)
	}
	t.Logf("one member's contract %d (%v each on loopback before): %v", MaxOpenPerMember+1, perContract, neg.Offers[0].Err)
	all, err := prov.store.List()
	must(t, err)
	room := prov.resp.room.(*Ledger)
	if g := prov.resp.OpenGrants(); g != MaxOpenPerMember || len(all) != MaxOpenPerMember {
		t.Fatalf("%d grants open, %d contracts stored; want %d each", g, len(all), MaxOpenPerMember)
	}
	if n := room.ReservedBy(w.memberID); n != MaxOpenPerMember {
		t.Errorf("the member reserves %d bytes, want %d", n, MaxOpenPerMember)
	}

	// One upload is bound: its contract is kept to its end.
	kept := made[0]
	must(t, prov.resp.Bound(kept.Grant.Session[:], 7))
	prov.resp.Release(kept.Grant.Session[:])
	// The others' grants lapse unbound: a prune after their deadline (a
	// grant TTL past the grant's end) deletes their contracts.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := prov.resp.prune(time.Now().Add(2*GrantTTL + time.Minute))
	runtime.ReadMemStats(&after)
	must(t, err)
	t.Logf("the prune deleted %d unbound contracts, allocating %d bytes", n, after.TotalAlloc-before.TotalAlloc)
	if n != MaxOpenPerMember-1 {
		t.Errorf("the prune deleted %d contracts, want the %d never bound", n, MaxOpenPerMember-1)
	}
	all, err = prov.store.List()
	must(t, err)
	if len(all) != 1 || all[0].ID != kept.Contract.ID {
		t.Fatalf("%d contracts stored after the prune, want only the bound one", len(all))
	}
	if obj, ok, err := prov.store.Bound(kept.Contract.ID, kept.Contract.Provider); err != nil || !ok || obj != 7 {
		t.Errorf("the bound contract's object: %d %v %v, want 7", obj, ok, err)
	}
	due, err := prov.store.Due(kept.Contract.End.Add(EndedRetention-time.Minute), 10)
	if err != nil || len(due) != 0 {
		t.Errorf("%d contracts due before the bound one's end plus retention (%v), want none", len(due), err)
	}
}

// TestMembersLeaveRoom (secreview, session 14): before, a member's share
// was a quarter of the room as it stood (not less what others reserved)
// and never less than the chain's largest data object (10 GiB), so four
// free members, one CONSIGN each, held all of it without uploading a
// byte. Now a CONSIGN reserves a window, a member's un-received bytes are
// at most a quarter of what the other members leave, and at most
// MaxOpenPerMember grants: eight members consigning all they can leave an
// honest member room for an ordinary upload.
func TestMembersLeaveRoom(t *testing.T) {
	for _, room := range []uint64{1 << 40, 40 << 30, 8 << 30} {
		t.Run(fmt.Sprintf("room %d GiB", room>>30), func(t *testing.T) {
			dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{SizeLimit: room, ObjectsLimit: 1 << 20}}}
			l := NewLedger(dir, 1, nil)
			ctx := context.Background()
			consigns, members := 0, 0
			for m := chain.MemberID(1); l.Reserved() < room && m <= 8; m++ {
				members++
				for {
					size := min(uint64(chain.DefaultMaxDataObjectSize), room-l.Reserved())
					if size == 0 {
						break
					}
					if _, err := l.Reserve(ctx, &Contract{ID: NewID(), Member: m, Terms: Terms{Size: size}}); err != nil {
						break
					}
					consigns++
				}
			}
			t.Logf("room %d GiB: %d free members, %d CONSIGNs of up to 10 GiB (no byte uploaded) reserve %d of %d bytes",
				room>>30, members, consigns, l.Reserved(), room)
			if l.Reserved() > room*7/8 {
				t.Errorf("%d members reserve %d of %d bytes; want at most 7/8", members, l.Reserved(), room)
			}
			if _, err := l.Reserve(ctx, &Contract{ID: NewID(), Member: 99, Terms: Terms{Size: 100 << 20}}); err != nil {
				t.Errorf("an honest member's 100 MiB upload after %d members: %v", members, err)
			}
		})
	}
}
