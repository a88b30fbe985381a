package contracts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
)

// TestRefusalSaysDiskFull: a Ledger refusing for lack of disk says so on the
// wire (disk_full), one refusing by policy (the voucher, a member's share)
// does not, and a renter reads the flag back as ErrDiskFull, still an
// ErrNoRoom; a refusal without the flag (an older provider's) is a plain
// ErrNoRoom.
func TestRefusalSaysDiskFull(t *testing.T) {
	ctx := context.Background()
	upload := func(size uint64) *Contract {
		c, _, _ := fixedContract(t)
		c.ID, c.Object, c.Size = NewID(), 0, size
		return c
	}
	voucher := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 4 << 20}}}
	roomy := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 1 << 40}}}
	disk := func(n uint64) func() (uint64, error) { return func() (uint64, error) { return n, nil } }
	for _, tc := range []struct {
		name string
		l    *Ledger
		full bool
	}{
		{"voucher", NewLedger(voucher, 1, disk(1<<30)), false},
		{"disk", NewLedger(roomy, 1, disk(1<<20)), true},
	} {
		err := tc.l.Fits(ctx, upload(5<<20))
		if !errors.Is(err, ErrNoRoom) || errors.Is(err, ErrDiskFull) != tc.full {
			t.Fatalf("%s: Fits = %v; want ErrNoRoom, ErrDiskFull %v", tc.name, err, tc.full)
		}
		rf := refusal(err)
		b, merr := proto.Marshal(rf)
		must(t, merr)
		var got pb.Refusal
		must(t, proto.Unmarshal(b, &got))
		if got.Code != pb.Code_CODE_NO_ROOM || got.DiskFull != tc.full {
			t.Fatalf("%s: refusal %v; want NO_ROOM, disk_full %v", tc.name, &got, tc.full)
		}
		back := refusalError(&got)
		if !errors.Is(back, ErrRefused) || !errors.Is(back, ErrNoRoom) || errors.Is(back, ErrDiskFull) != tc.full {
			t.Fatalf("%s: renter reads %v; want ErrRefused, ErrNoRoom, ErrDiskFull %v", tc.name, back, tc.full)
		}
	}
	// A member over its share is policy too.
	share := NewLedger(roomy, 1, disk(4<<20), WithReserveWindow(1<<20)) // 1 MiB each of 4 MiB
	first := upload(1 << 20)
	if _, err := share.Reserve(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := upload(1 << 20)
	second.Member = first.Member
	if err := share.Fits(ctx, second); !errors.Is(err, ErrNoRoom) || refusal(err).DiskFull {
		t.Fatalf("a member over its share: %v; want ErrNoRoom without disk_full", err)
	}
	old := refusalError(&pb.Refusal{Code: pb.Code_CODE_NO_ROOM, Reason: "no room"})
	if !errors.Is(old, ErrNoRoom) || errors.Is(old, ErrDiskFull) {
		t.Fatalf("a refusal without the flag reads %v; want ErrNoRoom, not ErrDiskFull", old)
	}
}

// TestOfferRefusedDiskFull: a provider whose disk cannot take a proposal
// refuses its offer saying it has no free disk room (with the free and
// reserved bytes), and the renter's negotiation tells it apart from a
// refusal by policy.
func TestOfferRefusedDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 2, 1, 1, 0)
	w.wrapRoom = func(Room) Room {
		return NewLedger(w.chain, w.provs[0].Bucket, func() (uint64, error) { return 1 << 20, nil })
	}
	w.responder(0, "", topicA)
	renter := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	n, err := renter.renter.Negotiate(ctx, req)
	if !errors.Is(err, ErrNoOffers) || !strings.Contains(err.Error(), "1 of them refused: no free disk room") {
		t.Fatalf("Negotiate: %v; want ErrNoOffers saying a provider had no free disk room", err)
	}
	if len(n.Offers) != 1 || !errors.Is(n.Offers[0].Err, ErrDiskFull) || !errors.Is(n.Offers[0].Err, ErrNoRoom) {
		t.Fatalf("offers %+v; want the provider's refusal, ErrDiskFull and ErrNoRoom", n.Offers)
	}
	// The reason gives the free space and what open uploads reserve, and
	// does not claim the disk is full.
	if msg := n.Offers[0].Err.Error(); !strings.Contains(msg, "no free disk room at the provider (1048576 bytes free, 0 reserved by") ||
		strings.Contains(msg, "disk is full") {
		t.Fatalf("refusal %q; want the free and reserved bytes, not a full disk", msg)
	}
}
