package state

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// seedExample builds the seed's worked example: families 0, 1, 3 (family
// 2 deleted), buckets [0:0 0:1 0:2 1:1 1:3 1:4 3:0 3:1 3:2] (1:0 and 1:2
// deleted), bucket 1:3 not accepting new bags, and the Channel policy
// 1 of family 0, 2 of family 1, 3 of family 3.
func seedExample(t *testing.T, h *harness) {
	t.Helper()
	for f := 0; f < 4; f++ {
		h.family()
	}
	for i := 0; i < 3; i++ {
		h.dBucket(0, true)
	}
	for i := 0; i < 5; i++ {
		h.dBucket(1, true)
	}
	for i := 0; i < 3; i++ {
		h.dBucket(2, true)
		h.dBucket(3, true)
	}
	for _, i := range []uint64{0, 2} {
		h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: chain.DistributionBucketID{Family: 1, Index: i}})
	}
	for i := uint64(0); i < 3; i++ {
		h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: chain.DistributionBucketID{Family: 2, Index: i}})
	}
	h.do(distLead, chain.MsgDeleteDistributionBucketFamily{Family: 2})
	h.do(distLead, chain.MsgUpdateDistributionBucketStatus{Bucket: chain.DistributionBucketID{Family: 1, Index: 3}, AcceptingNewBags: false})
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{0: 1, 1: 2, 3: 3}})
	h.storageBucket(true, 1000, 1<<30)

	var all []string
	for _, f := range queryAs[[]chain.DistributionFamily](t, h.m, chain.QueryDistributionFamilies, nil) {
		for _, b := range f.Buckets {
			all = append(all, b.ID.String())
		}
	}
	if got := strings.Join(all, " "); got != "0:0 0:1 0:2 1:1 1:3 1:4 3:0 3:1 3:2" {
		t.Fatalf("buckets = [%s]; the example setup is wrong", got)
	}
}

func TestPlacementSeedExample(t *testing.T) {
	h := newHarness(t)
	seedExample(t, h)
	m := h.member(alice)
	family0 := map[string]int{}
	for i := 0; i < 24; i++ {
		r := h.do(alice, chain.MsgCreateChannel{Member: m})
		created := event[chain.BagCreated](t, r)
		var f0, rest []string
		for _, id := range created.DistributionBuckets {
			if id.Family == 0 {
				f0 = append(f0, id.String())
			} else {
				rest = append(rest, id.String())
			}
		}
		if len(f0) != 1 || !slices.Contains([]string{"0:0", "0:1", "0:2"}, f0[0]) {
			t.Fatalf("bag %s: family 0 buckets %v; want one of 0:0 0:1 0:2", created.Bag, f0)
		}
		if got := strings.Join(rest, " "); got != "1:1 1:4 3:0 3:1 3:2" {
			t.Fatalf("bag %s: buckets %s; want 1:1 1:4 3:0 3:1 3:2", created.Bag, got)
		}
		if len(created.StorageBuckets) != 1 {
			t.Fatalf("bag %s: storage buckets %v", created.Bag, created.StorageBuckets)
		}
		// The bag is recorded in each bucket it was placed in.
		if b := h.dbucket(0, created.DistributionBuckets[0].Index); !slices.Contains(b.Bags, created.Bag) {
			t.Fatalf("bucket %s does not list bag %s", b.ID, created.Bag)
		}
		if got := h.bag(created.Bag); !equalJSON(got.DistributionBuckets, created.DistributionBuckets) {
			t.Fatalf("bag %+v vs event %+v", got, created)
		}
		family0[f0[0]]++
	}
	// Across blocks and bags the family-0 choice varies.
	if len(family0) < 2 {
		t.Fatalf("family-0 choices %v: placement does not vary", family0)
	}
	t.Logf("family-0 choices over 24 bags: %v", family0)
}

func TestPlacementVariesWithBlockHash(t *testing.T) {
	seen := map[string]bool{}
	for s := 0; s < 12; s++ {
		h := newHarness(t)
		h.hashFor = func(height int64) []byte { return defaultHash(height*1000 + int64(s)) }
		seedExample(t, h)
		m := h.member(alice)
		created := event[chain.BagCreated](t, h.do(alice, chain.MsgCreateChannel{Member: m}))
		if created.Bag != chain.ChannelBag(0) {
			t.Fatal(created.Bag)
		}
		seen[created.DistributionBuckets[0].String()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("the same bag in the same setup under 12 block hashes always went to %v", seen)
	}
}

func TestPlacementTooFewBuckets(t *testing.T) {
	h := newHarness(t)
	seedExample(t, h)
	m := h.member(alice)
	// Family 1 has only 2 accepting buckets (1:1, 1:4).
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{0: 1, 1: 3}})
	r := h.fail(alice, chain.MsgCreateChannel{Member: m}, chain.ErrTooFewBuckets)
	for _, want := range []string{"family 1", "asks for 3", "but 2 qualify [1:1 1:4]", "Channel"} {
		if !strings.Contains(r.Log, want) {
			t.Errorf("log %q lacks %q", r.Log, want)
		}
	}
	if _, err := queryErr[chain.Channel](h.m, chain.QueryChannel, chain.ChannelID(0)); err == nil {
		t.Fatal("channel created although its bag could not be placed")
	}
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{1: 2}})

	// Storage: two buckets asked, one qualifies (full and closed buckets do not).
	full := h.storageBucket(true, 1, 1000)
	h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: chain.CouncilBag, Add: []chain.StorageBucketID{full}})
	h.do(storageLead, chain.MsgRegisterDataObjects{Bag: chain.CouncilBag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("x")}}})
	h.storageBucket(false, 1000, 1000)
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 2})
	r = h.fail(alice, chain.MsgCreateChannel{Member: m}, chain.ErrTooFewBuckets)
	if !strings.Contains(r.Log, "2 storage buckets") || !strings.Contains(r.Log, "1 qualify [0]") {
		t.Errorf("log %q", r.Log)
	}
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 1})
	created := event[chain.BagCreated](t, h.do(alice, chain.MsgCreateChannel{Member: m}))
	if len(created.StorageBuckets) != 1 || created.StorageBuckets[0] != 0 {
		t.Fatalf("placed in %v; want the only qualifying bucket 0", created.StorageBuckets)
	}
}

func TestChoose(t *testing.T) {
	cands := []int{10, 20, 30, 40, 50}
	counts := map[int]int{}
	for s := 0; s < 2000; s++ {
		seed := []byte(fmt.Sprint(s))
		got := choose(seed, "d", cands, 2)
		if again := choose(seed, "d", cands, 2); !slices.Equal(got, again) {
			t.Fatal("choose is not deterministic")
		}
		if len(got) != 2 || got[0] >= got[1] {
			t.Fatalf("choose = %v; want 2 distinct in order", got)
		}
		for _, v := range got {
			counts[v]++
		}
	}
	// Each candidate is chosen with probability 2/5: 800 of 2000 expected.
	for _, c := range cands {
		if counts[c] < 650 || counts[c] > 950 {
			t.Errorf("candidate %d chosen %d times; want about 800", c, counts[c])
		}
	}
	if got := choose([]byte("x"), "d", cands, 5); !slices.Equal(got, cands) {
		t.Fatalf("choose all = %v", got)
	}
	if got := choose([]byte("x"), "d", cands, 0); len(got) != 0 {
		t.Fatalf("choose none = %v", got)
	}
}

func TestMembersAndChannels(t *testing.T) {
	h := newHarness(t)
	r := h.do(alice, chain.MsgCreateMember{Handle: "alice"})
	mc := event[chain.MemberCreated](t, r)
	if mc.Member != 0 || mc.Controller != alice.Account() {
		t.Fatal(mc)
	}
	// The member bag is always created, placed by the Member policy (none).
	bc := event[chain.BagCreated](t, r)
	if bc.Bag != chain.MemberBag(0) || bc.Owner != alice.Account() || len(bc.StorageBuckets) != 0 {
		t.Fatal(bc)
	}
	if got := queryAs[chain.Member](t, h.m, chain.QueryMember, mc.Member); got.Handle != "alice" {
		t.Fatal(got)
	}
	h.fail(alice, chain.MsgCreateMember{Handle: strings.Repeat("x", chain.MaxHandleLen+1)}, chain.ErrInvalid)
	// Default Channel policy asks for one storage bucket; none exists yet.
	h.fail(alice, chain.MsgCreateChannel{Member: mc.Member}, chain.ErrTooFewBuckets)
	b := h.storageBucket(true, 10, 100)
	h.fail(bob, chain.MsgCreateChannel{Member: mc.Member}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgCreateChannel{Member: 5}, chain.ErrMemberNotFound)
	r = h.do(alice, chain.MsgCreateChannel{Member: mc.Member, Title: "cats"})
	cc := event[chain.ChannelCreated](t, r)
	if cc.Channel != 0 || cc.Bag != "dynamic:channel:0" || cc.Owner != alice.Account() {
		t.Fatal(cc)
	}
	bc = event[chain.BagCreated](t, r)
	if bc.Bag != cc.Bag || len(bc.StorageBuckets) != 1 || bc.StorageBuckets[0] != b {
		t.Fatal(bc)
	}
	if got := h.sbucket(b); got.BagsCount != 1 || got.Bags[0] != cc.Bag {
		t.Fatal(got)
	}
	// The member bag follows the Member policy once it asks for buckets.
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.MemberBagType, StorageBuckets: 1})
	r = h.do(bob, chain.MsgCreateMember{})
	if bc := event[chain.BagCreated](t, r); bc.Bag != chain.MemberBag(1) || len(bc.StorageBuckets) != 1 {
		t.Fatal(bc)
	}
}

func TestDeleteChannel(t *testing.T) {
	h := newHarness(t)
	bag, b := h.channelBag(10, 100)
	f := h.family()
	d := h.dBucket(f, true)
	h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{d.Index}})
	h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: testCID("a")}}})
	h.fail(bob, chain.MsgDeleteChannel{Channel: 0}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgDeleteChannel{Channel: 9}, chain.ErrChannelNotFound)
	h.fail(alice, chain.MsgDeleteChannel{Channel: 0}, chain.ErrBagHasObjects)
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{1}})
	r := h.do(alice, chain.MsgDeleteChannel{Channel: 0})
	if ev := event[chain.BagDeleted](t, r); ev.Bag != bag || len(ev.StorageBuckets) != 1 || len(ev.DistributionBuckets) != 1 {
		t.Fatal(ev)
	}
	event[chain.ChannelDeleted](t, r)
	if _, err := queryErr[chain.Bag](h.m, chain.QueryBag, bag); err == nil {
		t.Fatal("bag survived")
	}
	if got := h.sbucket(b); got.BagsCount != 0 || len(got.Bags) != 0 {
		t.Fatal(got)
	}
	if got := h.dbucket(f, d.Index); got.BagsCount != 0 || len(got.Bags) != 0 {
		t.Fatal(got)
	}
	// Now the buckets can be deleted.
	h.do(storageLead, chain.MsgDeleteStorageBucket{Bucket: b})
	h.do(distLead, chain.MsgDeleteDistributionBucket{Bucket: d})
}
