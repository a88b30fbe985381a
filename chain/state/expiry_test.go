package state

import (
	"errors"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// blockWithEvents finalizes and commits a block of txs like block, and
// returns the block's own events too (read between FinalizeBlock and
// Commit, as the consensus engine does).
func (h *harness) blockWithEvents(txs ...[]byte) ([]chain.TxResult, []chain.Event) {
	h.t.Helper()
	h.height++
	res, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: h.height, Time: genesisTime.Add(time.Duration(h.height) * time.Second), Hash: h.hashFor(h.height)}, txs)
	if err != nil {
		h.t.Fatal(err)
	}
	evs := h.m.EndBlockEvents()
	if err := h.m.Commit(); err != nil {
		h.t.Fatal(err)
	}
	return res, evs
}

func expiredIn(t *testing.T, evs []chain.Event) []chain.ObjectsDeleted {
	t.Helper()
	var out []chain.ObjectsDeleted
	for _, e := range evs {
		var d chain.ObjectsDeleted
		if e.Type != d.EventType() {
			t.Fatalf("unexpected block event %s", e.Type)
		}
		if err := e.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Reason != chain.DeletedExpired {
			t.Fatalf("block event %+v; want reason %q", d, chain.DeletedExpired)
		}
		out = append(out, d)
	}
	return out
}

// TestPendingObjectsExpire: registrations never accepted stop holding the
// voucher after the expiry; accepted and deleted objects are left alone.
func TestPendingObjectsExpire(t *testing.T) {
	const expiry = 4
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.PendingObjectExpiry = expiry })
	op := testKey("operator")
	b, w := h.operatedBucket(op, 3, 300)
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 1})
	bag := chain.ChannelBag(h.channel(alice, h.member(alice)))
	if got := h.bag(bag).StorageBuckets; len(got) != 1 || got[0] != b {
		t.Fatalf("bag in %v", got)
	}
	spec := func(name string, size uint64) chain.ObjectSpec {
		return chain.ObjectSpec{Size: size, ContentID: testCID(name)}
	}

	// Three objects fill the bucket's voucher: nobody can register more.
	reg := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{spec("kept", 10), spec("dropped", 20), spec("never", 30)}}))
	registeredAt := h.height
	kept, dropped, never := reg.Objects[0], reg.Objects[1], reg.Objects[2]
	if never.ExpiresAt != registeredAt+expiry {
		t.Fatalf("ExpiresAt %d; want %d", never.ExpiresAt, registeredAt+expiry)
	}
	h.fail(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{spec("late", 1)}}, chain.ErrBucketFull)
	// One accepted, one deleted by its owner; the third is never uploaded.
	h.do(op, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: []chain.ObjectID{kept.ID}})
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{dropped.ID}})

	// Up to the block before the expiry height nothing expires.
	for h.height < registeredAt+expiry-1 {
		if _, evs := h.blockWithEvents(); len(evs) != 0 {
			t.Fatalf("block %d expired %v early", h.height, evs)
		}
	}
	if o := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: never.ID}); o.Accepted {
		t.Fatal("never-uploaded object accepted?")
	}
	// At the end of the expiry height the pending object goes.
	_, evs := h.blockWithEvents()
	del := expiredIn(t, evs)
	if len(del) != 1 || del[0].Bag != bag || len(del[0].Objects) != 1 || del[0].Objects[0] != never.ID {
		t.Fatalf("expired %+v; want object %d of %s", del, never.ID, bag)
	}
	if _, err := queryErr[chain.DataObject](h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: never.ID}); !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("expired object still queryable: %v", err)
	}
	if o := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: kept.ID}); !o.Accepted || o.ExpiresAt != 0 {
		t.Fatalf("accepted object %+v", o)
	}
	if v := h.sbucket(b).Voucher; v.ObjectsUsed != 1 || v.SizeUsed != 10 {
		t.Fatalf("voucher %+v; want only the accepted object charged", v)
	}
	if got := h.bag(bag); got.ObjectsCount != 1 || got.ObjectsSize != 10 {
		t.Fatalf("bag %+v", got)
	}
	// The released room takes new registrations.
	h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{spec("late", 1), spec("later", 2)}})
	// Later blocks expire nothing more of the first batch.
	if _, evs := h.blockWithEvents(); len(evs) != 0 {
		t.Fatalf("block %d expired %v", h.height, evs)
	}
}

// TestPendingObjectExpiryParam: the default, the storage lead's setting,
// and objects keeping the expiry they were registered with.
func TestPendingObjectExpiryParam(t *testing.T) {
	h := newHarness(t)
	if got := h.params().Limits.PendingObjectExpiry; got != chain.DefaultPendingObjectExpiry {
		t.Fatalf("default expiry %d; want %d", got, chain.DefaultPendingObjectExpiry)
	}
	h.fail(alice, chain.MsgSetPendingObjectExpiry{Blocks: 2}, chain.ErrUnauthorized)
	h.fail(storageLead, chain.MsgSetPendingObjectExpiry{Blocks: 0}, chain.ErrInvalid)
	h.fail(storageLead, chain.MsgSetPendingObjectExpiry{Blocks: chain.MaxPendingObjectExpiry + 1}, chain.ErrInvalid)
	bag, _ := h.channelBag(10, 1000)
	first := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("first")}}})).Objects[0]
	lu := event[chain.LimitsUpdated](t, h.do(storageLead, chain.MsgSetPendingObjectExpiry{Blocks: 2}))
	if lu.Limits.PendingObjectExpiry != 2 || h.params().Limits.PendingObjectExpiry != 2 {
		t.Fatalf("limits %+v", lu.Limits)
	}
	second := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("second")}}})).Objects[0]
	if second.ExpiresAt != h.height+2 || first.ExpiresAt != first.CreatedAt+chain.DefaultPendingObjectExpiry {
		t.Fatalf("expiries %d and %d", first.ExpiresAt, second.ExpiresAt)
	}
	var expired []chain.ObjectID
	for range 3 {
		_, evs := h.blockWithEvents()
		for _, d := range expiredIn(t, evs) {
			expired = append(expired, d.Objects...)
		}
	}
	if len(expired) != 1 || expired[0] != second.ID {
		t.Fatalf("expired %v; want only object %d", expired, second.ID)
	}
	if o := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: first.ID}); o.ID != first.ID {
		t.Fatal(o)
	}
}
