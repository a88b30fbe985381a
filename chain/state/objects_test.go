package state

import (
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestVoucherLimits(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.VoucherMaxObjects, g.Limits.VoucherMaxSize = 100, 1000 })
	h.fail(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 101, SizeLimit: 10}, chain.ErrVoucherLimitTooHigh)
	h.fail(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 10, SizeLimit: 1001}, chain.ErrVoucherLimitTooHigh)
	b := h.storageBucket(true, 100, 1000)
	h.fail(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 101, SizeLimit: 10}, chain.ErrVoucherLimitTooHigh)
	h.fail(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: 7, ObjectsLimit: 1, SizeLimit: 1}, chain.ErrStorageBucketNotFound)
	ev := event[chain.StorageBucketVoucherLimitsSet](t, h.do(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 5, SizeLimit: 50}))
	if ev.ObjectsLimit != 5 || ev.SizeLimit != 50 {
		t.Fatal(ev)
	}
	// Raising the global max allows higher bucket limits.
	lu := event[chain.LimitsUpdated](t, h.do(storageLead, chain.MsgSetStorageBucketsVoucherMaxLimits{Objects: 1000, Size: 1 << 20}))
	if lu.Limits.VoucherMaxObjects != 1000 {
		t.Fatal(lu)
	}
	h.do(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 500, SizeLimit: 1 << 20})
	if v := h.sbucket(b).Voucher; v.ObjectsLimit != 500 || v.SizeLimit != 1<<20 {
		t.Fatal(v)
	}
	st := event[chain.StorageBucketStatusUpdated](t, h.do(storageLead, chain.MsgUpdateStorageBucketStatus{Bucket: b, AcceptingNewBags: false}))
	if st.AcceptingNewBags || h.sbucket(b).AcceptingNewBags {
		t.Fatal("status not updated")
	}
}

func TestRegisterDataObjects(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MaxDataObjectSize = 1000 })
	bag, b := h.channelBag(3, 100)
	obj := func(size uint64, cid string) chain.MsgRegisterDataObjects {
		return chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: size, ContentID: cid}}}
	}
	h.fail(bob, obj(10, testCID("c")), chain.ErrUnauthorized)
	h.fail(storageLead, obj(10, testCID("c")), chain.ErrUnauthorized)
	h.fail(alice, chain.MsgRegisterDataObjects{Bag: chain.ChannelBag(77), Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("c")}}}, chain.ErrBagNotFound)
	h.fail(alice, obj(0, testCID("c")), chain.ErrZeroSize)
	h.fail(alice, obj(1001, testCID("c")), chain.ErrObjectTooLarge)
	h.fail(alice, obj(10, "bad cid"), chain.ErrBadContentID)

	// Blacklist.
	bl := event[chain.BlacklistUpdated](t, h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{testCID("evil"), testCID("worse")}}))
	if len(bl.Added) != 2 {
		t.Fatal(bl)
	}
	h.fail(alice, obj(10, testCID("evil")), chain.ErrBlacklisted)
	if p := h.params(); len(p.Blacklist) != 2 || !p.Blacklisted(testCID("evil")) {
		t.Fatalf("blacklist = %v", p.Blacklist)
	}
	h.do(storageLead, chain.MsgUpdateBlacklist{Remove: []string{testCID("evil")}})
	if p := h.params(); len(p.Blacklist) != 1 || p.Blacklisted(testCID("evil")) {
		t.Fatalf("blacklist = %v", p.Blacklist)
	}

	// Uploading blocked.
	event[chain.UploadingBlockedUpdated](t, h.do(storageLead, chain.MsgSetUploadingBlocked{Blocked: true}))
	h.fail(alice, obj(10, testCID("c")), chain.ErrUploadingBlocked)
	h.do(storageLead, chain.MsgSetUploadingBlocked{Blocked: false})

	// Max size can be raised.
	h.do(storageLead, chain.MsgSetMaxDataObjectSize{Size: 2000})

	// Register: pending, voucher charged.
	reg := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 30, ContentID: testCID("a")}, {Size: 40, ContentID: testCID("b")}}}))
	if len(reg.Objects) != 2 || reg.Objects[0].ID != 1 || reg.Objects[1].ID != 2 || reg.Objects[0].Accepted {
		t.Fatalf("registered %+v", reg.Objects)
	}
	if v := h.sbucket(b).Voucher; v.ObjectsUsed != 2 || v.SizeUsed != 70 {
		t.Fatalf("voucher %+v", v)
	}
	if got := h.bag(bag); got.ObjectsCount != 2 || got.ObjectsSize != 70 {
		t.Fatalf("bag %+v", got)
	}
	// Voucher full: size, then objects.
	r := h.fail(alice, obj(31, testCID("c")), chain.ErrBucketFull)
	if want := "storage bucket 0 is full by size (70 B of 100 B used, 31 B more asked)"; !strings.Contains(r.Log, want) {
		t.Errorf("log %q; want it to contain %q", r.Log, want)
	}
	h.do(alice, obj(30, testCID("c")))
	r = h.fail(alice, obj(0+1, testCID("d")), chain.ErrBucketFull)
	if want := "storage bucket 0 is full by objects and by size (3 of 3 objects used, 1 more asked; 100 B of 100 B used, 1 B more asked)"; !strings.Contains(r.Log, want) {
		t.Errorf("log %q; want it to contain %q", r.Log, want)
	}
	// Deleting frees the voucher.
	h.fail(bob, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{1}}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{1, 99}}, chain.ErrObjectNotFound)
	del := event[chain.ObjectsDeleted](t, h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{1}}))
	if len(del.Objects) != 1 || del.Objects[0] != 1 {
		t.Fatal(del)
	}
	if v := h.sbucket(b).Voucher; v.ObjectsUsed != 2 || v.SizeUsed != 70 {
		t.Fatalf("voucher after delete %+v", v)
	}
	if _, err := queryErr[chain.DataObject](h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: 1}); err == nil {
		t.Fatal("deleted object still there")
	}
	// Object IDs keep increasing after deletion.
	reg = event[chain.ObjectsRegistered](t, h.do(alice, obj(5, testCID("e"))))
	if reg.Objects[0].ID != 4 {
		t.Fatalf("next object ID %d, want 4", reg.Objects[0].ID)
	}
	// The storage lead may delete too (moderation).
	h.do(storageLead, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{4}})
}

func TestRegisterAllOrNothing(t *testing.T) {
	h := newHarness(t)
	bag, b0 := h.channelBag(10, 1000)
	b1 := h.storageBucket(true, 2, 1000)
	h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{b1}})
	specs := []chain.ObjectSpec{{Size: 1, ContentID: testCID("a")}, {Size: 1, ContentID: testCID("b")}, {Size: 1, ContentID: testCID("c")}}
	// Bucket 1 has room for 2 objects only: nothing is registered.
	h.fail(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs}, chain.ErrBucketFull)
	if v := h.sbucket(b0).Voucher; v.ObjectsUsed != 0 {
		t.Fatalf("bucket 0 charged after a failed registration: %+v", v)
	}
	if objs := queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bag); len(objs) != 0 {
		t.Fatalf("objects after failed registration: %v", objs)
	}
	h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs[:2]})
	for _, b := range []chain.StorageBucketID{b0, b1} {
		if v := h.sbucket(b).Voucher; v.ObjectsUsed != 2 || v.SizeUsed != 2 {
			t.Fatalf("bucket %d voucher %+v", b, v)
		}
	}
	// A bag in no storage bucket cannot take objects.
	h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Remove: []chain.StorageBucketID{b0, b1}})
	h.fail(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs[:1]}, chain.ErrNoStorageBuckets)
	// Too many objects in one tx.
	h2 := newHarness(t, func(g *chain.Genesis) { g.Limits.MaxObjectsPerTx = 2 })
	bag2, _ := h2.channelBag(10, 1000)
	h2.fail(alice, chain.MsgRegisterDataObjects{Bag: bag2, Objects: specs}, chain.ErrInvalid)
}

func TestAcceptPendingDataObjects(t *testing.T) {
	h := newHarness(t)
	// The operated bucket is the only one accepting, so the channel bag lands there.
	transactor := testKey("transactor")
	w := h.addWorker(chain.StorageGroup, bob)
	b := h.storageBucket(true, 10, 1000)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b, Worker: w})
	h.do(bob, chain.MsgAcceptStorageBucketInvitation{Worker: w, Bucket: b, Transactor: transactor.Account()})
	m := h.member(alice)
	bag := chain.ChannelBag(h.channel(alice, m))
	reg := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("a")}, {Size: 2, ContentID: testCID("b")}}}))
	ids := []chain.ObjectID{reg.Objects[0].ID, reg.Objects[1].ID}

	other, _ := h.operatedBucket(testKey("carol"), 10, 1000)
	h.fail(mallory, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids}, chain.ErrUnauthorized)
	h.fail(testKey("carol"), chain.MsgAcceptPendingDataObjects{Worker: 1, Bucket: other, Bag: bag, Objects: ids}, chain.ErrBagNotInBucket)
	h.fail(transactor, chain.MsgAcceptPendingDataObjects{Worker: 1, Bucket: b, Bag: bag, Objects: ids}, chain.ErrNotOperator)
	h.fail(transactor, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: []chain.ObjectID{ids[0], 99}}, chain.ErrObjectNotFound)

	acc := event[chain.ObjectsAccepted](t, h.do(transactor, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids[:1]}))
	if len(acc.Objects) != 1 || acc.Objects[0] != ids[0] || acc.Bucket != b {
		t.Fatal(acc)
	}
	// Already accepted objects are skipped; the role account may accept too.
	acc = event[chain.ObjectsAccepted](t, h.do(bob, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids}))
	if len(acc.Objects) != 1 || acc.Objects[0] != ids[1] {
		t.Fatal(acc)
	}
	objs := queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bag)
	for _, o := range objs {
		if !o.Accepted {
			t.Fatalf("object %d not accepted", o.ID)
		}
	}
	// Accepting only already-accepted objects succeeds with no event.
	if r := h.do(bob, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids}); len(r.Events) != 0 {
		t.Fatalf("events %v", r.Events)
	}
	// A removed operator cannot accept.
	h.do(storageLead, chain.MsgRemoveStorageBucketOperator{Bucket: b})
	h.fail(transactor, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: ids}, chain.ErrNotOperator)
}

func TestUpdateBagStorageBuckets(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.StorageBucketsPerBag = 2 })
	bag, b0 := h.channelBag(10, 1000)
	h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 100, ContentID: testCID("a")}, {Size: 200, ContentID: testCID("b")}}})
	closed := h.storageBucket(false, 10, 1000)
	small := h.storageBucket(true, 1, 1000)
	tiny := h.storageBucket(true, 10, 299)
	roomy := h.storageBucket(true, 10, 1000)
	extra := h.storageBucket(true, 10, 1000)

	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: chain.ChannelBag(9), Add: []chain.StorageBucketID{roomy}}, chain.ErrBagNotFound)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{99}}, chain.ErrStorageBucketNotFound)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{b0}}, chain.ErrBagAlreadyInBucket)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Remove: []chain.StorageBucketID{roomy}}, chain.ErrBagNotInBucket)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{closed}}, chain.ErrNotAcceptingBags)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{small}}, chain.ErrBucketFull)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{tiny}}, chain.ErrBucketFull)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{roomy, extra}}, chain.ErrBucketsPerBagLimit)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag}, chain.ErrInvalid)
	h.fail(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{roomy}, Remove: []chain.StorageBucketID{roomy}}, chain.ErrInvalid)

	// Move the bag from b0 to roomy and extra (within the limit with the removal).
	ev := event[chain.StorageBagBucketsUpdated](t, h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{extra, roomy}, Remove: []chain.StorageBucketID{b0}}))
	if len(ev.Added) != 2 || len(ev.Removed) != 1 {
		t.Fatal(ev)
	}
	if got := h.bag(bag).StorageBuckets; len(got) != 2 || got[0] != roomy || got[1] != extra {
		t.Fatalf("bag buckets %v; want [%d %d]", got, roomy, extra)
	}
	if v := h.sbucket(b0); v.Voucher.ObjectsUsed != 0 || v.Voucher.SizeUsed != 0 || v.BagsCount != 0 || len(v.Bags) != 0 {
		t.Fatalf("old bucket %+v", v)
	}
	for _, id := range []chain.StorageBucketID{roomy, extra} {
		if v := h.sbucket(id); v.Voucher.ObjectsUsed != 2 || v.Voucher.SizeUsed != 300 || v.BagsCount != 1 || v.Bags[0] != bag {
			t.Fatalf("new bucket %d %+v", id, v)
		}
	}
	// Buckets-per-bag limit cannot go below a policy.
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 2})
	h.fail(storageLead, chain.MsgSetStorageBucketsPerBagLimit{Limit: 1}, chain.ErrBucketsPerBagLimit)
	h.fail(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 3}, chain.ErrBucketsPerBagLimit)
	h.do(storageLead, chain.MsgSetStorageBucketsPerBagLimit{Limit: 3})
	pol := event[chain.DynamicBagPolicyUpdated](t, h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 3}))
	if pol.Policy.StorageBuckets != 3 || pol.Policy.Type != chain.ChannelBagType {
		t.Fatal(pol)
	}
	if p := h.params(); p.Limits.StorageBucketsPerBag != 3 || p.Policy(chain.ChannelBagType).StorageBuckets != 3 {
		t.Fatalf("params %+v", p)
	}
}

func TestBlacklistLimit(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MaxBlacklistSize = 2; g.Blacklist = []string{testCID("x")} })
	h.fail(storageLead, chain.MsgUpdateBlacklist{Add: []string{testCID("a"), testCID("b")}}, chain.ErrBlacklistFull)
	ev := event[chain.BlacklistUpdated](t, h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{testCID("a"), testCID("b")}, Remove: []string{testCID("x")}}))
	if len(ev.Added) != 2 || len(ev.Removed) != 1 {
		t.Fatal(ev)
	}
	// Adding a listed ID or removing an unlisted one changes nothing.
	ev = event[chain.BlacklistUpdated](t, h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{testCID("a")}, Remove: []string{testCID("zz")}}))
	if len(ev.Added) != 0 || len(ev.Removed) != 0 {
		t.Fatal(ev)
	}
	if got, want := h.params().Blacklist, slices.Sorted(slices.Values([]string{testCID("a"), testCID("b")})); !slices.Equal(got, want) {
		t.Fatalf("blacklist %v", got)
	}
}
