package chain_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "account.json")
	if _, err := chain.LoadKey(path); err == nil {
		t.Fatal("LoadKey of a missing file succeeded")
	}
	k, err := chain.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v; want 0700", di.Mode())
	}
	again, err := chain.LoadOrCreateKey(path)
	if err != nil || again.Account() != k.Account() {
		t.Fatalf("reload = %v, %v; want %v", again.Account(), err, k.Account())
	}
	acct := k.Account()
	if len(acct) != 64 || acct.Validate() != nil {
		t.Fatalf("account %q", acct)
	}
	if p, err := chain.ParseAccount(strings.ToUpper(string(acct))); err != nil || p != acct {
		t.Fatalf("ParseAccount = %v %v", p, err)
	}
	pub, err := acct.PublicKey()
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatal("PublicKey does not round-trip")
	}
	// A corrupt file is an error, not a silent new key.
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := chain.LoadOrCreateKey(path); err == nil {
		t.Fatal("LoadOrCreateKey replaced a corrupt key file")
	}
	for _, bad := range []string{"", "zz", strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if _, err := chain.ParseAccount(bad); err == nil {
			t.Errorf("ParseAccount(%q) succeeded", bad)
		}
	}
}

// TestKeyFilePermissions: an account key its group or other users can read
// is refused with the fix, like the libp2p identity, and is not replaced.
func TestKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "member.key")
	k, err := chain.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("account key %s has permissions %04o and is accessible by other users; it must be readable by its owner only: run chmod 600 %s", path, mode, path)
		if _, err := chain.LoadKey(path); err == nil || err.Error() != want {
			t.Errorf("LoadKey of a %04o key: %v; want %q", mode, err, want)
		}
		if _, err := chain.LoadOrCreateKey(path); err == nil {
			t.Errorf("LoadOrCreateKey accepted a %04o key", mode)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := chain.LoadKey(path); err != nil || got.Account() != k.Account() {
		t.Fatalf("after chmod 600: %v, %v; want the same key", got.Account(), err)
	}
	if _, err := chain.LoadKey(filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadKey of a directory: %v", err)
	}
}

func TestGenesisValidate(t *testing.T) {
	a, _ := chain.GenerateKey()
	b, _ := chain.GenerateKey()
	g := chain.DefaultGenesis(a.Account(), b.Account())
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*chain.Genesis){
		"no chain id":     func(g *chain.Genesis) { g.ChainID = "" },
		"bad lead":        func(g *chain.Genesis) { g.StorageLead = "x" },
		"zero limit":      func(g *chain.Genesis) { g.Limits.MaxDataObjectSize = 0 },
		"policy too big":  func(g *chain.Genesis) { g.Policies[1].StorageBuckets = 99 },
		"policy family":   func(g *chain.Genesis) { g.Policies[1].Families = map[chain.FamilyID]uint64{0: 1} },
		"dup policy":      func(g *chain.Genesis) { g.Policies[0].Type = chain.ChannelBagType },
		"bad blacklist":   func(g *chain.Genesis) { g.Blacklist = []string{"a b"} },
		"blacklist limit": func(g *chain.Genesis) { g.Limits.MaxBlacklistSize = 1; g.Blacklist = []string{"a", "b"} },
	} {
		g := chain.DefaultGenesis(a.Account(), b.Account())
		mutate(&g)
		if err := g.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded", name)
		}
	}
}

func TestEvents(t *testing.T) {
	e := chain.NewEvent(chain.BagCreated{Bag: chain.ChannelBag(1), StorageBuckets: []chain.StorageBucketID{2}})
	if e.Type != "BagCreated" {
		t.Fatal(e.Type)
	}
	var bc chain.BagCreated
	if err := e.Decode(&bc); err != nil || bc.Bag != chain.ChannelBag(1) {
		t.Fatal(bc, err)
	}
	var wrong chain.ObjectsDeleted
	if err := e.Decode(&wrong); err == nil {
		t.Fatal("decoded BagCreated into ObjectsDeleted")
	}
	if _, ok := chain.FindEvent[chain.ObjectsDeleted]([]chain.Event{e}); ok {
		t.Fatal("found a missing event")
	}
	if got, ok := chain.FindEvent[chain.BagCreated]([]chain.Event{e}); !ok || got.StorageBuckets[0] != 2 {
		t.Fatal(got, ok)
	}
}

func TestEventPayloadNames(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range chain.AllEventPayloads() {
		name := reflect.TypeOf(p).Name()
		if p.EventType() != name || seen[name] {
			t.Errorf("payload %s has event type %q (or is listed twice)", name, p.EventType())
		}
		seen[name] = true
	}
	// Every payload type of the package (events.go, validators.go, ...) is listed.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^func \((\w+)\) EventType`).FindAllStringSubmatch(string(src), -1) {
			found++
			if !seen[m[1]] {
				t.Errorf("%s (%s) is missing from AllEventPayloads", m[1], f)
			}
		}
	}
	if found != len(seen) {
		t.Errorf("the package declares %d event payload types; AllEventPayloads lists %d", found, len(seen))
	}
}
