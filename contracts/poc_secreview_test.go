package contracts

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/topics"
)

// PoC (secreview, session 14): FAILS on main by design.
//
// One member, following the protocol, consigns any number of 1-byte
// contracts lasting the maximum 3650 days. Each costs it one proposal and
// one CONSIGN; each makes the provider write a contract to its store (kept
// until end + 7 days: ten years), hold a grant in memory for an hour and a
// reservation the member share never bites on (1 byte). Nothing bounds how
// many: MaxPendingPerRenter bounds offers waiting, not contracts made. The
// hourly prune loads every stored contract into memory and re-verifies two
// signatures each (Store.List).
//
// The property asserted is the proposed fix: at most pocMaxOpenPerMember
// open (unbound) contracts per member.
const pocMaxOpenPerMember = MaxPendingPerRenter

func TestPoCUnboundedContractsOneMember(t *testing.T) {
	const n = 3 * MaxPendingPerRenter
	long := topics.New(topics.Low, topics.High, topics.High, topics.High)
	w := newWorld(t, 2, 1, 1, 0)
	prov := w.responder(0, "", long)
	w.waitTopicPeers(1, long, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	for i := range n {
		req := w.request(1, 3650*day, 1)
		req.Enough = 1
		neg, err := renter.renter.Negotiate(ctx, req)
		if err != nil {
			t.Fatalf("negotiation %d: %v", i, err)
		}
		if len(neg.Contracts) != 1 {
			t.Fatalf("negotiation %d: %d contracts", i, len(neg.Contracts))
		}
	}
	perContract := time.Since(start) / n

	all, err := prov.store.List()
	must(t, err)
	grants := prov.resp.OpenGrants()
	room := prov.resp.room.(*Ledger)
	t.Logf("one member made %d contracts (%v each on loopback): %d stored until %s, %d grants open, %d bytes reserved by the member",
		n, perContract, len(all), all[0].End.Add(EndedRetention).Format(time.DateOnly), grants, room.ReservedBy(w.memberID))

	// What the hourly prune costs per stored contract: memory of List().
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	listed, err := prov.store.List()
	must(t, err)
	runtime.ReadMemStats(&after)
	perHeap := (after.TotalAlloc - before.TotalAlloc) / uint64(len(listed))
	perDay := float64(24*time.Hour) / float64(perContract)
	t.Logf("Store.List (the prune loop, hourly): %d bytes allocated per contract; at this one renter's pace (%.0f a day) that is %.1f GiB per prune and %.0f ed25519 verifies",
		perHeap, perDay, float64(perHeap)*perDay/(1<<30), 2*perDay)

	if grants > pocMaxOpenPerMember || len(all) > pocMaxOpenPerMember {
		t.Errorf("one member holds %d open grants and %d stored unbound contracts; want at most %d each", grants, len(all), pocMaxOpenPerMember)
	}
}

// TestPoCFourMembersFillRoom measures the known-open share problem: the
// share is a quarter of the room as it stands (free voucher or disk, not
// less what others reserved), floored at the chain's largest data object
// (10 GiB by default), so four free members, one CONSIGN each, hold all
// of it; on a provider with at most 10 GiB of room one member does.
// FAILS on main by design: the asserted property is that another member
// still gets room for an ordinary upload.
func TestPoCFourMembersFillRoom(t *testing.T) {
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
			t.Logf("room %d GiB: %d free members, %d CONSIGNs of at most 10 GiB (no byte uploaded) reserve %d of %d bytes, for an hour after each one's last chunk",
				room>>30, members, consigns, l.Reserved(), room)
			if _, err := l.Reserve(ctx, &Contract{ID: NewID(), Member: 99, Terms: Terms{Size: 100 << 20}}); err != nil {
				t.Errorf("an honest member's 100 MiB upload after %d members: %v", members, err)
			}
		})
	}
}
