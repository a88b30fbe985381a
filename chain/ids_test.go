package chain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestParseBagID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want chain.BagID
		ok   bool
	}{
		{"static:council", chain.CouncilBag, true},
		{"static:wg:storage", chain.StorageWorkingGroupBag, true},
		{"static:wg:distribution", chain.DistributionGroupBag, true},
		{"dynamic:member:4", chain.MemberBag(4), true},
		{" dynamic:channel:1337 ", chain.ChannelBag(1337), true},
		{"dynamic:channel:01", "", false},
		{"dynamic:channel:-1", "", false},
		{"dynamic:channel:", "", false},
		{"dynamic:video:1", "", false},
		{"static:wg:council", "", false},
		{"static:council:1", "", false},
		{"static", "", false},
		{"", "", false},
	} {
		got, err := chain.ParseBagID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBagID(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if typ, id, ok := chain.ChannelBag(7).Dynamic(); !ok || typ != chain.ChannelBagType || id != 7 {
		t.Errorf("Dynamic() = %v %v %v", typ, id, ok)
	}
	if _, _, ok := chain.CouncilBag.Dynamic(); ok || !chain.CouncilBag.IsStatic() {
		t.Error("council is static")
	}
	if err := chain.BagID("dynamic:member:x").Validate(); err == nil {
		t.Error("Validate accepted a bad ID")
	}
}

func TestDistributionBucketID(t *testing.T) {
	id, err := chain.ParseDistributionBucketID("1:3")
	if err != nil || id != (chain.DistributionBucketID{Family: 1, Index: 3}) || id.String() != "1:3" {
		t.Fatalf("parse 1:3 = %v, %v", id, err)
	}
	for _, bad := range []string{"1", "1:", ":3", "a:b", "1:3:4", "-1:2"} {
		if _, err := chain.ParseDistributionBucketID(bad); err == nil {
			t.Errorf("ParseDistributionBucketID(%q) succeeded", bad)
		}
	}
	b, _ := json.Marshal(map[string]any{"b": id, "m": map[chain.DistributionBucketID]int{id: 1}})
	if string(b) != `{"b":"1:3","m":{"1:3":1}}` {
		t.Fatalf("JSON = %s", b)
	}
	var back struct{ B chain.DistributionBucketID }
	if err := json.Unmarshal([]byte(`{"B":"2:5"}`), &back); err != nil || back.B.String() != "2:5" {
		t.Fatalf("unmarshal = %v %v", back, err)
	}
	if !(chain.DistributionBucketID{Family: 0, Index: 9}).Less(chain.DistributionBucketID{Family: 1, Index: 0}) {
		t.Error("Less orders by family first")
	}
}

func TestParseOthers(t *testing.T) {
	if ty, err := chain.ParseDynamicBagType("channel"); err != nil || ty != chain.ChannelBagType {
		t.Error(ty, err)
	}
	if _, err := chain.ParseDynamicBagType("Video"); err == nil {
		t.Error("Video accepted")
	}
	if g, err := chain.ParseGroup("Storage"); err != nil || g != chain.StorageGroup {
		t.Error(g, err)
	}
	if _, err := chain.ParseGroup("council"); err == nil {
		t.Error("council group accepted")
	}
	if id, err := chain.ParseStorageBucketID("3"); err != nil || id != 3 {
		t.Error(id, err)
	}
	if _, err := chain.ParseWorkerID("x"); err == nil {
		t.Error("worker x accepted")
	}
}

func TestCanonicalContentID(t *testing.T) {
	const v1pb = "bafybeifkolcwszz3bkmc343ytys3mse7aje2i55xrwsshymbr2dcbmsu6e"
	for in, want := range map[string]string{
		v1pb: v1pb,
		"BAFYBEIFKOLCWSZZ3BKMC343YTYS3MSE7AJE2I55XRWSSHYMBR2DCBMSU6E": v1pb,
		"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		"QmZtqmH4cbjN7wAqAV8ZGKpBHRusESkjqA6439zc95mv3F":              "bafybeiflv6sefc64rq2nvyulxqltaotcc5psotw7lf2xwpuytaqvuqukky",
		"zb2rhbEwhWShc7NEmCbu5obETsR2CAaiXU8uXpx4nEEWE3p1C":           "bafkreicekaelp4utferl3mmeo4ozs6crnjhytv3qadbnn2vrrmejjkwdu4",
	} {
		got, err := chain.CanonicalContentID(in)
		if err != nil || got != want {
			t.Errorf("CanonicalContentID(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "bad cid", "Qm", strings.Repeat("b", chain.MaxContentIDLen+1)} {
		_, err := chain.CanonicalContentID(bad)
		if !errors.Is(err, chain.ErrBadContentID) {
			t.Errorf("CanonicalContentID(%q) = %v; want ErrBadContentID", bad, err)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("error for %d bytes of input is %d bytes long", len(bad), len(err.Error()))
		}
	}
}
