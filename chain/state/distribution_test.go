package state

import (
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestDistributionFamilies(t *testing.T) {
	h := newHarness(t)
	f0, f1 := h.family(), h.family()
	if f0 != 0 || f1 != 1 {
		t.Fatalf("family IDs %d %d", f0, f1)
	}
	// Metadata: the seed's JSON shape, validated.
	md := chain.FamilyMetadata{Region: "eu-north-1", Description: "Central and northern Europe", LatencyTestTargets: []string{}, Areas: []chain.Area{{ContinentCode: "EU"}}}
	ev := event[chain.DistributionFamilyMetadataSet](t, h.do(distLead, chain.MsgSetDistributionFamilyMetadata{Family: f0, Metadata: md}))
	if ev.Metadata.Region != "eu-north-1" {
		t.Fatal(ev)
	}
	got := queryAs[chain.DistributionFamily](t, h.m, chain.QueryDistributionFamily, f0)
	if got.Metadata == nil || got.Metadata.Areas[0].ContinentCode != "EU" {
		t.Fatalf("family %+v", got)
	}
	h.fail(distLead, chain.MsgSetDistributionFamilyMetadata{Family: 9, Metadata: md}, chain.ErrFamilyNotFound)
	for _, bad := range []chain.FamilyMetadata{
		{Areas: []chain.Area{{ContinentCode: "XX"}}},
		{Areas: []chain.Area{{CountryCode: "no"}}},
		{Areas: []chain.Area{{ContinentCode: "EU", CountryCode: "NO"}}},
		{Areas: []chain.Area{{}}},
		{Areas: []chain.Area{{SubdivisionCode: "Oslo"}}},
	} {
		h.fail(distLead, chain.MsgSetDistributionFamilyMetadata{Family: f0, Metadata: bad}, chain.ErrInvalid)
	}

	// Buckets: indices never reused within a family.
	b0 := h.dBucket(f1, true)
	b1 := h.dBucket(f1, false)
	if b0.String() != "1:0" || b1.String() != "1:1" {
		t.Fatalf("bucket IDs %s %s", b0, b1)
	}
	h.fail(distLead, chain.MsgCreateDistributionBucket{Family: 9}, chain.ErrFamilyNotFound)
	h.fail(distLead, chain.MsgDeleteDistributionBucketFamily{Family: f1}, chain.ErrFamilyHasBuckets)
	event[chain.DistributionBucketDeleted](t, h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: b1}))
	h.fail(distLead, chain.MsgDeleteDistributionBucket{Bucket: b1}, chain.ErrDistributionBucketNotFound)
	if b2 := h.dBucket(f1, true); b2.Index != 2 {
		t.Fatalf("new bucket after deletion got index %d; want 2", b2.Index)
	}

	// A family named by a policy cannot be deleted.
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.MemberBagType, Families: map[chain.FamilyID]uint64{f0: 0, f1: 1}})
	h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: b0})
	h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: chain.DistributionBucketID{Family: f1, Index: 2}})
	h.fail(distLead, chain.MsgDeleteDistributionBucketFamily{Family: f1}, chain.ErrFamilyInPolicy)
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.MemberBagType})
	event[chain.DistributionFamilyDeleted](t, h.do(distLead, chain.MsgDeleteDistributionBucketFamily{Family: f1}))
	h.fail(distLead, chain.MsgDeleteDistributionBucketFamily{Family: f1}, chain.ErrFamilyNotFound)
	// Family IDs are not reused either.
	if f := h.family(); f != 2 {
		t.Fatalf("family after deletion = %d; want 2", f)
	}
	// Empty family 0 (only in no policy) can be deleted.
	h.do(distLead, chain.MsgDeleteDistributionBucketFamily{Family: f0})
}

func TestDistributionBuckets(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.DistributionOperatorsPerBucket = 2 })
	f := h.family()
	d := h.dBucket(f, true)
	st := event[chain.DistributionBucketStatusUpdated](t, h.do(distLead, chain.MsgUpdateDistributionBucketStatus{Bucket: d, AcceptingNewBags: false}))
	if st.AcceptingNewBags || h.dbucket(f, 0).AcceptingNewBags {
		t.Fatal("status not updated")
	}
	mode := event[chain.DistributionBucketModeUpdated](t, h.do(distLead, chain.MsgUpdateDistributionBucketMode{Bucket: d, Distributing: false}))
	if mode.Distributing || h.dbucket(f, 0).Distributing {
		t.Fatal("mode not updated")
	}
	h.fail(distLead, chain.MsgUpdateDistributionBucketMode{Bucket: chain.DistributionBucketID{Family: f, Index: 5}}, chain.ErrDistributionBucketNotFound)

	// Operators.
	w0 := h.addWorker(chain.DistributionGroup, bob)
	w1 := h.addWorker(chain.DistributionGroup, alice)
	w2 := h.addWorker(chain.DistributionGroup, testKey("carol"))
	h.fail(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: 9}, chain.ErrWorkerNotFound)
	h.do(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: w0})
	h.fail(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: w0}, chain.ErrInvitationPending)
	h.do(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: w1})
	h.fail(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: w2}, chain.ErrTooManyOperators)
	h.fail(distLead, chain.MsgDeleteDistributionBucket{Bucket: d}, chain.ErrInvitationPending)
	h.fail(alice, chain.MsgAcceptDistributionBucketInvitation{Worker: w0, Bucket: d}, chain.ErrUnauthorized)
	h.fail(testKey("carol"), chain.MsgAcceptDistributionBucketInvitation{Worker: w2, Bucket: d}, chain.ErrNoInvitation)
	event[chain.DistributionInvitationAccepted](t, h.do(bob, chain.MsgAcceptDistributionBucketInvitation{Worker: w0, Bucket: d}))
	h.fail(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: w0}, chain.ErrAlreadyOperator)
	event[chain.DistributionInvitationCancelled](t, h.do(distLead, chain.MsgCancelDistributionBucketInvitation{Bucket: d, Worker: w1}))
	h.fail(distLead, chain.MsgCancelDistributionBucketInvitation{Bucket: d, Worker: w1}, chain.ErrNoInvitation)
	h.fail(alice, chain.MsgAcceptDistributionBucketInvitation{Worker: w1, Bucket: d}, chain.ErrNoInvitation)

	// Metadata (the seed's JSON shape).
	md := chain.DistributionOperatorMetadata{
		Endpoint: "https://example.com/distributor/",
		Location: &chain.Location{CountryCode: "SG", City: "Singapore", Coordinates: &chain.Coordinates{Latitude: 1, Longitude: 104}},
		Extra:    "Welcome to Joystream - Singapore branch!",
	}
	h.fail(alice, chain.MsgSetDistributionOperatorMetadata{Worker: w1, Bucket: d, Metadata: md}, chain.ErrNotOperator)
	h.fail(alice, chain.MsgSetDistributionOperatorMetadata{Worker: w0, Bucket: d, Metadata: md}, chain.ErrUnauthorized)
	bad := md
	bad.Endpoint = "ftp://x"
	h.fail(bob, chain.MsgSetDistributionOperatorMetadata{Worker: w0, Bucket: d, Metadata: bad}, chain.ErrInvalid)
	bad = md
	bad.Location = &chain.Location{Coordinates: &chain.Coordinates{Latitude: 91}}
	h.fail(bob, chain.MsgSetDistributionOperatorMetadata{Worker: w0, Bucket: d, Metadata: bad}, chain.ErrInvalid)
	event[chain.DistributionOperatorMetadataSet](t, h.do(bob, chain.MsgSetDistributionOperatorMetadata{Worker: w0, Bucket: d, Metadata: md}))
	got := h.dbucket(f, 0)
	if len(got.Operators) != 1 || got.Operators[0].Worker != w0 || got.Operators[0].Metadata.Location.City != "Singapore" || len(got.Invitations) != 0 {
		t.Fatalf("bucket %+v", got)
	}
	// The bucket must have no operators to be deleted.
	h.fail(distLead, chain.MsgDeleteDistributionBucket{Bucket: d}, chain.ErrBucketHasOperator)
	h.fail(distLead, chain.MsgRemoveDistributionBucketOperator{Bucket: d, Worker: w1}, chain.ErrNotOperator)
	event[chain.DistributionOperatorRemoved](t, h.do(distLead, chain.MsgRemoveDistributionBucketOperator{Bucket: d, Worker: w0}))
	// With bags it cannot be deleted either.
	h.do(distLead, chain.MsgUpdateDistributionBucketStatus{Bucket: d, AcceptingNewBags: true})
	h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: chain.CouncilBag, Family: f, Add: []uint64{0}})
	h.fail(distLead, chain.MsgDeleteDistributionBucket{Bucket: d}, chain.ErrBucketHasBags)
	h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: chain.CouncilBag, Family: f, Remove: []uint64{0}})
	h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: d})
}

func TestUpdateBagDistributionBuckets(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.DistributionBucketsPerBag = 2 })
	f := h.family()
	for i := 0; i < 3; i++ {
		h.dBucket(f, true)
	}
	closed := h.dBucket(f, false)
	bag := chain.CouncilBag
	// update-bag -b static:council -f 0 -a 1
	ev := event[chain.DistributionBagBucketsUpdated](t, h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{1}}))
	if len(ev.Added) != 1 || ev.Added[0].String() != "0:1" {
		t.Fatal(ev)
	}
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{1}}, chain.ErrBagAlreadyInBucket)
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Remove: []uint64{2}}, chain.ErrBagNotInBucket)
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{9}}, chain.ErrDistributionBucketNotFound)
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: 9, Add: []uint64{0}}, chain.ErrFamilyNotFound)
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{closed.Index}}, chain.ErrNotAcceptingBags)
	h.fail(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{0, 2}}, chain.ErrBucketsPerBagLimit)
	// update-bag -b static:council -f 0 -a 0 2 -r 1
	h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{2, 0}, Remove: []uint64{1}})
	got := h.bag(bag).DistributionBuckets
	if len(got) != 2 || got[0].String() != "0:0" || got[1].String() != "0:2" {
		t.Fatalf("bag buckets %v", got)
	}
	if b := h.dbucket(f, 1); b.BagsCount != 0 || len(b.Bags) != 0 {
		t.Fatalf("removed bucket %+v", b)
	}
	// Limits and policies.
	h.fail(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{f: 3}}, chain.ErrBucketsPerBagLimit)
	h.fail(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{5: 1}}, chain.ErrFamilyNotFound)
	h.fail(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: "Video"}, chain.ErrInvalid)
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{f: 2}})
	h.fail(distLead, chain.MsgSetDistributionBucketsPerBagLimit{Limit: 1}, chain.ErrBucketsPerBagLimit)
	lu := event[chain.LimitsUpdated](t, h.do(distLead, chain.MsgSetDistributionBucketsPerBagLimit{Limit: 5}))
	if lu.Limits.DistributionBucketsPerBag != 5 {
		t.Fatal(lu)
	}
	if p := h.params().Policy(chain.ChannelBagType); p.Families[f] != 2 {
		t.Fatalf("policy %+v", p)
	}
}
