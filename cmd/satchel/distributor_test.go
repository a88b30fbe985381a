package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// txOut is the --json result every transaction command prints.
type txOut struct {
	Height int64         `json:"height"`
	TxHash string        `json:"txHash"`
	Signer chain.Account `json:"signer"`
	Events []chain.Event `json:"events"`

	Bucket  json.RawMessage `json:"bucket"`
	Family  *uint64         `json:"family"`
	Worker  *uint64         `json:"worker"`
	Member  *uint64         `json:"member"`
	Channel *uint64         `json:"channel"`
	Bag     chain.BagID     `json:"bag"`
}

func distIDs(ss ...string) []chain.DistributionBucketID {
	out := make([]chain.DistributionBucketID, len(ss))
	for i, s := range ss {
		id, err := chain.ParseDistributionBucketID(s)
		if err != nil {
			panic(err)
		}
		out[i] = id
	}
	return out
}

// testPlacementExample runs the seed's worked example through the CLI and
// the real chain: families 0, 1, 3 (family 2 deleted), buckets
// [0:0 0:1 0:2 1:1 1:3 1:4 3:0 3:1 3:2], bucket 1:3 not accepting, policy
// 1 of family 0, 2 of family 1, 3 of family 3. A new channel's bag must be in
// exactly one of 0:0/0:1/0:2, in 1:1 and 1:4, and in all of 3:0 3:1 3:2.
// Storage: buckets 0, 1, 2 with 1 not accepting and a policy of 2 storage
// buckets put the bag in 0 and 2.
func testPlacementExample(t *testing.T, tc *testChain) {
	// Storage buckets first: the default Channel policy needs one.
	for i := 0; i < 3; i++ {
		var r txOut
		tc.okJSON(&r, "storage", "leader", "create-bucket", "-n", "100", "-s", "1GiB", "-a", "yes", "-y")
		if string(r.Bucket) != itoa(i) {
			t.Fatalf("storage create-bucket %d: bucket %s", i, r.Bucket)
		}
	}
	tc.ok("storage", "leader", "update-bucket-status", "-i", "1", "-a", "no", "-y")
	tc.ok("storage", "leader", "update-dynamic-bag-policy", "-t", "Channel", "-n", "2", "-y")

	// Families 0..3 with 3 buckets each; the text output is the seed's.
	for f := 0; f < 4; f++ {
		if out := tc.ok("distributor", "leader", "create-bucket-family", "-y"); out != "created distribution bucket family "+itoa(f)+"\n" {
			t.Fatalf("create-bucket-family: %q, want family %d", out, f)
		}
		for i := 0; i < 3; i++ {
			want := "created distribution bucket " + itoa(f) + ":" + itoa(i) + "\n"
			if out := tc.ok("distributor", "leader", "create-bucket", "-f", itoa(f), "-a", "yes", "-y"); out != want {
				t.Fatalf("create-bucket -f %d: %q, want %q", f, out, want)
			}
		}
	}
	// Family 1 gets 1:3 and 1:4 (with --json: the ID as the seed writes it).
	for _, want := range []string{`"1:3"`, `"1:4"`} {
		var r txOut
		tc.okJSON(&r, "distributor", "leader", "create-bucket", "-f", "1", "-a", "yes", "-y")
		if string(r.Bucket) != want || r.Family == nil || *r.Family != 1 || r.Height <= 0 || r.TxHash == "" ||
			r.Signer != tc.distributionLead.Account() || len(r.Events) != 1 || r.Events[0].Type != "DistributionBucketCreated" {
			t.Fatalf("create-bucket --json: %+v, want bucket %s", r, want)
		}
	}
	// A family with buckets cannot go: the chain's rule, its own message.
	tc.fails([]string{"distribution bucket family 2 still has 3 buckets; delete them first"},
		"distributor", "leader", "delete-bucket-family", "-f", "2", "-y")
	for _, b := range []string{"2:0", "2:1", "2:2", "1:0", "1:2"} {
		if out := tc.ok("distributor", "leader", "delete-bucket", "-B", b, "-y"); out != "deleted distribution bucket "+b+"\n" {
			t.Fatalf("delete-bucket -B %s: %q", b, out)
		}
	}
	tc.ok("distributor", "leader", "delete-bucket-family", "-f", "2", "-y")
	tc.fails([]string{"distribution bucket family 2 does not exist", "list families with `satchel family list`"},
		"distributor", "leader", "delete-bucket-family", "-f", "2", "-y")
	tc.ok("distributor", "leader", "update-bucket-status", "-B", "1:3", "-a", "no", "-y")
	// The seed's syntax: several pairs after one -p.
	if out := tc.ok("distributor", "leader", "update-dynamic-bag-policy", "-t", "Channel", "-p", "0:1", "1:2", "3:3", "-y"); out != "new Channel bags are placed in distribution buckets: 1 of family 0, 2 of family 1, 3 of family 3\n" {
		t.Fatalf("update-dynamic-bag-policy: %q", out)
	}

	var list struct {
		Distribution []chain.DistributionBucket `json:"distribution"`
	}
	tc.okJSON(&list, "bucket", "list", "--distribution")
	var ids []chain.DistributionBucketID
	for _, b := range list.Distribution {
		ids = append(ids, b.ID)
		if b.AcceptingNewBags != (b.ID.String() != "1:3") {
			t.Errorf("bucket %s accepting new bags: %v", b.ID, b.AcceptingNewBags)
		}
	}
	if want := distIDs("0:0", "0:1", "0:2", "1:1", "1:3", "1:4", "3:0", "3:1", "3:2"); !slices.Equal(ids, want) {
		t.Fatalf("distribution buckets %v, want the seed's %v", ids, want)
	}

	// A member and a channel, with the default account key (created).
	var mem txOut
	tc.okJSON(&mem, "member", "create", "--handle", "alice", "-y")
	if mem.Member == nil {
		t.Fatalf("member create: no member ID: %+v", mem)
	}
	accountKey, err := chain.LoadKey(accountKeyFile(tc.cfg))
	if err != nil {
		t.Fatalf("member create did not leave the account key: %v", err)
	}
	if mem.Signer != accountKey.Account() {
		t.Fatalf("member signed by %s, want the new account key %s", mem.Signer, accountKey.Account())
	}
	var ch txOut
	tc.okJSON(&ch, "channel", "create", "--member", itoa(int(*mem.Member)), "--title", "Cooking", "-y")
	if ch.Channel == nil || ch.Bag != chain.ChannelBag(chain.ChannelID(*ch.Channel)) {
		t.Fatalf("channel create: %+v", ch)
	}

	var bag chain.Bag
	tc.okJSON(&bag, "bag", "show", string(ch.Bag))
	if bag.ID != ch.Bag || bag.Owner != accountKey.Account() {
		t.Fatalf("bag show: %+v", bag)
	}
	in := func(s string) bool { return slices.Contains(bag.DistributionBuckets, distIDs(s)[0]) }
	family0 := 0
	for _, s := range []string{"0:0", "0:1", "0:2"} {
		if in(s) {
			family0++
		}
	}
	if family0 != 1 || !in("1:1") || !in("1:4") || in("1:3") || !in("3:0") || !in("3:1") || !in("3:2") || len(bag.DistributionBuckets) != 6 {
		t.Fatalf("bag %s distribution buckets %v: want one of 0:0/0:1/0:2, 1:1 and 1:4, and 3:0 3:1 3:2", bag.ID, bag.DistributionBuckets)
	}
	if !slices.Equal(bag.StorageBuckets, []chain.StorageBucketID{0, 2}) {
		t.Fatalf("bag %s storage buckets %v, want [0 2] (bucket 1 is not accepting)", bag.ID, bag.StorageBuckets)
	}
	t.Logf("bag %s: storage %v, distribution %v", bag.ID, bag.StorageBuckets, bag.DistributionBuckets)

	// The human form of bag show names the same buckets.
	out := tc.ok("bag", "show", string(ch.Bag))
	if !strings.Contains(out, "distribution buckets  "+joinIDs(bag.DistributionBuckets)) || !strings.Contains(out, "storage buckets       0 2") {
		t.Errorf("bag show:\n%s", out)
	}

	// Too few buckets: the chain refuses the channel and says which.
	tc.ok("distributor", "leader", "update-bucket-status", "-B", "1:4", "-a", "no", "-y")
	tc.fails([]string{"asks for 2 buckets of distribution family 1 accepting new bags, but 1 qualify [1:1]"},
		"channel", "create", "--member", itoa(int(*mem.Member)), "-y")
	tc.ok("distributor", "leader", "update-bucket-status", "-B", "1:4", "-a", "yes", "-y")
}

// testPermission signs leader commands with a role-less key and with the
// other group's lead key: each is refused with the permission error, the
// account that signed, and the key to use.
func testPermission(t *testing.T, tc *testChain) {
	stranger, k := newKeyFile(t, t.TempDir(), "stranger.key")
	families := func() int {
		fams, err := tc.client.DistributionFamilies(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(fams)
	}
	before := families()
	errOut := tc.fails([]string{
		"only the distribution lead (account " + string(tc.distributionLead.Account()) + ") may do this",
		"this was signed by account " + string(k.Account()) + " (--key " + stranger + ")",
		// The lead key is under the home here: the hint names it.
		"sign with the distribution lead key: pass --key " + leadKeyFile(tc.cfg, chain.DistributionGroup),
	}, "distributor", "leader", "create-bucket-family", "-k", stranger, "-y")
	if strings.Count(errOut, "\n") != 1 {
		t.Errorf("want a one-line error, got:\n%s", errOut)
	}
	// The storage lead is not the distribution lead either, and vice versa;
	// a key named in the config is used the same way.
	tc.fails([]string{"only the distribution lead"}, "distributor", "leader", "create-bucket", "-f", "0", "-k", leadKeyFile(tc.cfg, chain.StorageGroup), "-y")
	tc.fails([]string{"only the storage lead", "sign with the storage lead key"}, "storage", "leader", "set-uploading-blocked", "on", "-k", stranger, "-y")
	cfgWithKey := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfgWithKey, "home: "+tc.home+"\nkey: "+stranger+"\nchain:\n  rpc: "+tc.cfg.Chain.RPC+"\n")
	_, errOut, code := tc.run("-c", cfgWithKey, "distributor", "leader", "update-bucket-mode", "-B", "0:0", "-d", "off", "-y")
	if code == 0 || !strings.Contains(errOut, "(config key "+stranger+")") ||
		!strings.Contains(errOut, "pass --key "+leadKeyFile(tc.cfg, chain.DistributionGroup)+" (key in "+cfgWithKey+" signs every command") {
		t.Errorf("config key: exit %d, stderr %s", code, errOut)
	}
	// An operator command signed by the wrong account names the worker's.
	tc.fails([]string{"distribution worker 9 does not exist", "satchel workers list"},
		"distributor", "operator", "accept-invitation", "-B", "0:0", "-w", "9", "-k", stranger, "-y")
	if got := families(); got != before {
		t.Fatalf("refused commands changed the families: %d -> %d", before, got)
	}
}

// testBadFlagsSubmitNothing checks that bad flag values are refused before
// anything is signed or submitted.
func testBadFlagsSubmitNothing(t *testing.T, tc *testChain) {
	lead := tc.distributionLead.Account()
	before := tc.nonce(lead)
	tc.fails([]string{`invalid argument "0-1" for "-B, --bucketId" flag: distribution bucket ID "0-1": want {familyId}:{bucketIndex}, e.g. 0:1`},
		"distributor", "leader", "delete-bucket", "-B", "0-1", "-y")
	tc.fails([]string{`invalid argument "maybe" for "-a, --acceptingBags" flag: "maybe": want yes or no`},
		"distributor", "leader", "update-bucket-status", "-B", "1:1", "-a", "maybe", "-y")
	tc.fails([]string{`"2:x"`}, "distributor", "leader", "update-dynamic-bag-policy", "-t", "Channel", "-p", "1:1", "2:x", "-y")
	tc.fails([]string{"unexpected arguments"}, "distributor", "leader", "update-dynamic-bag-policy", "-t", "Channel", "1:1", "-y")
	if got := tc.nonce(lead); got != before {
		t.Fatalf("bad flags changed the lead's nonce %d -> %d", before, got)
	}
}

// testDistributionOperators runs the operator life cycle: add a worker,
// invite, cancel, invite again, accept, publish metadata, remove.
func testDistributionOperators(t *testing.T, tc *testChain) {
	workerKey, wk := newKeyFile(t, t.TempDir(), "dist-worker.key")
	var added txOut
	tc.okJSON(&added, "workers", "add", "-g", "distribution", "-a", workerKey, "-y")
	if added.Worker == nil {
		t.Fatalf("workers add: %+v", added)
	}
	w := itoa(int(*added.Worker))

	// Operate a bucket of family 0 that does not hold the channel's bag, so
	// only its operator keeps it from being deleted.
	var placed chain.Bag
	tc.okJSON(&placed, "bag", "show", "dynamic:channel:0")
	db := ""
	for _, s := range []string{"0:0", "0:1", "0:2"} {
		if !slices.Contains(placed.DistributionBuckets, distIDs(s)[0]) {
			db = s
			break
		}
	}

	tc.ok("distributor", "leader", "invite-bucket-operator", "-B", db, "-w", w, "-y")
	tc.fails([]string{"already invited to bucket " + db}, "distributor", "leader", "invite-bucket-operator", "-B", db, "-w", w, "-y")
	tc.ok("distributor", "leader", "cancel-invitation", "-B", db, "-w", w, "-y")
	tc.fails([]string{"has no pending invitation to bucket " + db, "satchel bucket show"},
		"distributor", "operator", "accept-invitation", "-B", db, "-w", w, "-k", workerKey, "-y")
	tc.ok("distributor", "leader", "invite-bucket-operator", "-B", db, "-w", w, "-y")
	// Only the worker's role account may accept.
	tc.fails([]string{"only distribution worker " + w + "'s role account " + string(wk.Account()), "pass --key with the key of the account named above"},
		"distributor", "operator", "accept-invitation", "-B", db, "-w", w, "-y")
	if out := tc.ok("distributor", "operator", "accept-invitation", "-B", db, "-w", w, "-k", workerKey, "-y"); out != "distribution worker "+w+" now operates distribution bucket "+db+"\n" {
		t.Fatalf("accept-invitation: %q", out)
	}

	meta := filepath.Join(t.TempDir(), "metadata.json")
	writeFile(t, meta, `{
  "endpoint": "https://dist.example.com/distributor/",
  "location": {"countryCode": "SG", "city": "Singapore", "coordinates": {"latitude": 1, "longitude": 104}},
  "extra": "Welcome to Satchel - Singapore branch!"
}`)
	tc.ok("distributor", "operator", "set-metadata", "-B", db, "-w", w, "-j", meta, "-k", workerKey, "-y")
	// -i, the file before -j (as in storage operator set-metadata, where
	// -i is the bucket), still works and says to use -j.
	if out, errOut, code := tc.run("distributor", "operator", "set-metadata", "-B", db, "-w", w, "-i", meta, "-e", "https://dist2.example.com/", "-k", workerKey, "-y"); code != 0 ||
		!strings.Contains(errOut, "-i is -j/--input now") || strings.Contains(out, "deprecated") {
		t.Fatalf("set-metadata -i: exit %d, stdout %q, stderr %q; want it to work with a warning", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	writeFile(t, bad, `{"endpoint": "https://x.example/", "locaton": {}}`)
	tc.fails([]string{`unknown field "locaton"`}, "distributor", "operator", "set-metadata", "-B", db, "-w", w, "-j", bad, "-k", workerKey, "-y")
	tc.fails([]string{`endpoint "ftp://x"`}, "distributor", "operator", "set-metadata", "-B", db, "-w", w, "-e", "ftp://x", "-k", workerKey, "-y")

	var b chain.DistributionBucket
	tc.okJSON(&b, "bucket", "show", db)
	if !b.HasOperator(*(*chain.WorkerID)(added.Worker)) || len(b.Operators) != 1 || b.Operators[0].Metadata == nil ||
		b.Operators[0].Metadata.Endpoint != "https://dist2.example.com/" || b.Operators[0].Metadata.Location.City != "Singapore" {
		t.Fatalf("bucket %s after set-metadata: %+v", db, b)
	}
	if out := tc.ok("bucket", "show", db); !regexp.MustCompile(`(?m)^worker ` + w + ` endpoint +https://dist2\.example\.com/$`).MatchString(out) {
		t.Errorf("bucket show %s:\n%s", db, out)
	}

	tc.ok("distributor", "leader", "update-bucket-mode", "-B", db, "-d", "off", "-y")
	tc.fails([]string{"distribution bucket " + db + " has 1 operator;"}, "distributor", "leader", "delete-bucket", "-B", db, "-y")
	tc.fails([]string{"operates or is invited to 1 distribution buckets"}, "workers", "remove", "-g", "distribution", "-w", w, "-y")
	tc.ok("distributor", "leader", "remove-bucket-operator", "-B", db, "-w", w, "-y")
	tc.ok("distributor", "leader", "update-bucket-mode", "-B", db, "-d", "on", "-y")

	// Family metadata, per-bag limit and update-bag.
	fam := filepath.Join(t.TempDir(), "family.json")
	writeFile(t, fam, `{"region": "eu-north-1", "description": "Central and northern Europe", "latencyTestTargets": [], "areas": [{"continentCode": "EU"}]}`)
	tc.ok("distributor", "leader", "set-bucket-family-metadata", "-f", "0", "-j", fam, "-y")
	// -i, the file before -j, still works and warns on stderr only: stdout
	// stays one JSON document.
	if out, errOut, code := tc.run("distributor", "leader", "set-bucket-family-metadata", "-f", "0", "-i", fam, "-y", "--json"); code != 0 ||
		!strings.Contains(errOut, "-i is -j/--input now") || !json.Valid([]byte(out)) {
		t.Fatalf("set-bucket-family-metadata -i --json: exit %d, stdout %q, stderr %q; want it to work with a warning on stderr", code, out, errOut)
	}
	tc.fails([]string{"-j FILE"}, "distributor", "leader", "set-bucket-family-metadata", "-f", "0", "-y")
	tc.fails([]string{"metadata file " + fam + ".missing does not exist; check the path"}, "distributor", "leader", "set-bucket-family-metadata", "-f", "0", "-j", fam+".missing", "-y")
	if out := tc.ok("distributor", "leader", "set-bucket-family-metadata", "--help"); strings.Contains(out, "input-file") || !strings.Contains(out, "-j, --input") {
		t.Errorf("set-bucket-family-metadata --help lists the old flag or not -j:\n%s", out)
	}
	var f chain.DistributionFamily
	tc.okJSON(&f, "family", "show", "0")
	if f.Metadata == nil || f.Metadata.Region != "eu-north-1" || len(f.Buckets) != 3 {
		t.Fatalf("family 0: %+v", f)
	}
	tc.fails([]string{"asks for 6 distribution buckets, above the new limit 2"}, "distributor", "leader", "set-buckets-per-bag-limit", "-l", "2", "-y")
	tc.ok("distributor", "leader", "set-buckets-per-bag-limit", "-l", "7", "-y")

	bag := "dynamic:channel:0"
	var before chain.Bag
	tc.okJSON(&before, "bag", "show", bag)
	var missing []string
	for _, s := range []string{"0:0", "0:1", "0:2"} {
		if !slices.Contains(before.DistributionBuckets, distIDs(s)[0]) {
			missing = append(missing, strings.TrimPrefix(s, "0:"))
		}
	}
	tc.fails([]string{"is already in distribution bucket 3:0", "satchel bag show BAG"}, "distributor", "leader", "update-bag", "-b", bag, "-f", "3", "-a", "0", "-y")
	tc.fails([]string{"would be in 8 distribution buckets, above the distribution buckets-per-bag limit 7"},
		"distributor", "leader", "update-bag", "-b", bag, "-f", "0", "-a", strings.Join(missing, ","), "-y")
	if out := tc.ok("distributor", "leader", "update-bag", "-b", bag, "-f", "0", "-a", missing[0], "-y"); out != "bag "+bag+": added to distribution buckets 0:"+missing[0]+"; removed from none\n" {
		t.Fatalf("update-bag: %q", out)
	}
	tc.ok("distributor", "leader", "update-bag", "-b", bag, "-f", "0", "-r", missing[0], "-y")
	var after chain.Bag
	tc.okJSON(&after, "bag", "show", bag)
	if !slices.Equal(after.DistributionBuckets, before.DistributionBuckets) {
		t.Fatalf("bag after add and remove: %v, want %v", after.DistributionBuckets, before.DistributionBuckets)
	}
}

func itoa(i int) string { return chain.WorkerID(i).String() }
