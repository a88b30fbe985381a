package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// testReads checks the read commands' text and JSON against the state the
// earlier steps built.
func testReads(t *testing.T, tc *testChain) {
	var bags []chain.Bag
	tc.okJSON(&bags, "bag", "list")
	var ids []chain.BagID
	for _, b := range bags {
		ids = append(ids, b.ID)
	}
	for _, want := range []chain.BagID{chain.CouncilBag, chain.StorageWorkingGroupBag, chain.DistributionGroupBag, chain.MemberBag(0), chain.MemberBag(1), chain.ChannelBag(0)} {
		if !slices.Contains(ids, want) {
			t.Errorf("bag list %v lacks %s", ids, want)
		}
	}
	if out := tc.ok("bag", "list"); !strings.HasPrefix(out, "BAG ") || !strings.Contains(out, "dynamic:channel:0") {
		t.Errorf("bag list:\n%s", out)
	}
	tc.fails([]string{"bag dynamic:channel:9 does not exist", "satchel bag list"}, "bag", "show", "dynamic:channel:9")
	tc.fails([]string{`bag ID "channel:9"`}, "bag", "show", "channel:9")

	var both struct {
		Storage      []chain.StorageBucket      `json:"storage"`
		Distribution []chain.DistributionBucket `json:"distribution"`
	}
	tc.okJSON(&both, "bucket", "list")
	if len(both.Storage) != 3 || len(both.Distribution) != 9 {
		t.Fatalf("bucket list: %d storage, %d distribution buckets; want 3 and 9", len(both.Storage), len(both.Distribution))
	}
	out := tc.ok("bucket", "list")
	if !strings.Contains(out, "STORAGE BUCKET") || !strings.Contains(out, "DISTRIBUTION BUCKET") || !strings.Contains(out, "1:3 ") {
		t.Errorf("bucket list:\n%s", out)
	}
	if out := tc.ok("bucket", "list", "--storage", "--json"); strings.Contains(out, "distribution") {
		t.Errorf("bucket list --storage --json names distribution buckets:\n%s", out)
	}
	tc.fails([]string{"exclude each other"}, "bucket", "list", "--storage", "--distribution")
	tc.fails([]string{"distribution bucket 2:0 does not exist", "satchel bucket list --distribution"}, "bucket", "show", "2:0")

	var fams []chain.DistributionFamily
	tc.okJSON(&fams, "family", "list")
	var famIDs []chain.FamilyID
	for _, f := range fams {
		famIDs = append(famIDs, f.ID)
	}
	if !slices.Equal(famIDs, []chain.FamilyID{0, 1, 3}) {
		t.Fatalf("family list: %v, want [0 1 3]", famIDs)
	}
	if out := tc.ok("family", "list"); !strings.Contains(out, "eu-north-1") || !strings.Contains(out, "1:1 1:3 1:4") {
		t.Errorf("family list:\n%s", out)
	}

	if out := tc.ok("params"); !strings.Contains(out, "storage lead") || !strings.Contains(out, "Channel bag policy") ||
		!strings.Contains(out, "2 storage buckets; distribution buckets: 1 of family 0, 2 of family 1, 3 of family 3") {
		t.Errorf("params:\n%s", out)
	}
}
