package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// atVersion makes the genesis name app version v.
func atVersion(v uint64) func(*chain.Genesis) {
	return func(g *chain.Genesis) { g.AppVersion = v }
}

// register registers one object named name in bag, signed by alice, and
// returns its ID.
func (h *harness) register(bag chain.BagID, name string) chain.ObjectID {
	h.t.Helper()
	r := h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID(name)}}})
	return event[chain.ObjectsRegistered](h.t, r).Objects[0].ID
}

func (h *harness) version() uint64 {
	h.t.Helper()
	v, err := h.m.AppVersion()
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// objectByID asks the committed state for an object by ID alone.
func (h *harness) objectByID(id chain.ObjectID) (chain.DataObject, error) {
	return queryErr[chain.DataObject](h.m, chain.QueryObjectByID, id)
}

// TestUpgradeBackfillsTheObjectIndex: a version 2 chain with objects
// (one deleted) schedules the upgrade to version 3; until the upgrade
// height nothing changes; the upgrade block — which registers an object of
// its own — ends with the migration, reports the new version to the engine
// and as a block event; after it every object is found by its ID alone,
// the deleted one is not found, and new objects are indexed as they come.
func TestUpgradeBackfillsTheObjectIndex(t *testing.T) {
	h := newHarness(t, atVersion(VersionMerkle))
	bag, _ := h.channelBag(100, 1<<20)
	var ids []chain.ObjectID
	for _, n := range []string{"a", "b", "c"} {
		ids = append(ids, h.register(bag, n))
	}
	gone := h.register(bag, "gone")
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{gone}})
	if _, err := h.objectByID(ids[0]); !errors.Is(err, chain.ErrNotFound) || errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("object by ID on a version 2 chain: %v; want plain not found", err)
	}

	at := h.height + 1 + chain.MinUpgradeDelay
	r := h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: at})
	if ev := event[chain.AppVersionUpgradeScheduled](t, r); ev.Version != VersionObjectIndex || ev.Height != at {
		t.Fatalf("scheduled event %+v", ev)
	}
	info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil)
	if info.Version != VersionMerkle || info.Upgrade == nil || *info.Upgrade != (chain.UpgradePlan{Version: VersionObjectIndex, Height: at}) {
		t.Fatalf("app version info %+v; want version 2 with the plan", info)
	}
	// The plan is proven like any read.
	_, hash, _ := h.m.Info()
	got, err := VerifyWitness(proven(t, h.m, chain.QueryAppVersion, nil), hash)
	if want, _ := h.m.Query(chain.QueryAppVersion, nil); err != nil || string(got) != string(want) {
		t.Fatalf("proven app version %s, %v; want %s", got, err, want)
	}
	for h.height < at-1 {
		h.block()
		if h.version() != VersionMerkle {
			t.Fatalf("version %d at height %d, before the upgrade height %d", h.version(), h.height, at)
		}
	}

	// The upgrade block, with a registration of its own.
	h.height++
	res, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: at, Time: genesisTime.Add(time.Duration(at) * time.Second), Hash: h.hashFor(at)},
		[][]byte{h.sign(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID("in the upgrade block")}}})})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, event[chain.ObjectsRegistered](t, res[0]).Objects[0].ID)
	if got := h.m.UpgradedTo(); got != VersionObjectIndex {
		t.Fatalf("UpgradedTo after the upgrade block = %d; want %d", got, VersionObjectIndex)
	}
	up, ok := chain.FindEvent[chain.AppVersionUpgraded](h.m.EndBlockEvents())
	if !ok || up != (chain.AppVersionUpgraded{From: VersionMerkle, To: VersionObjectIndex, Height: at}) {
		t.Fatalf("block events %v; want AppVersionUpgraded 2 -> 3 at %d", h.m.EndBlockEvents(), at)
	}
	if err := h.m.Commit(); err != nil {
		t.Fatal(err)
	}

	if h.version() != VersionObjectIndex {
		t.Fatalf("version after the upgrade block: %d", h.version())
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Version != VersionObjectIndex || info.Upgrade != nil {
		t.Fatalf("app version info after the upgrade %+v", info)
	}
	ids = append(ids, h.register(bag, "after"))
	for _, id := range ids {
		o, err := h.objectByID(id)
		if err != nil || o.ID != id || o.Bag != bag {
			t.Fatalf("object %d by ID after the upgrade: %+v, %v", id, o, err)
		}
	}
	if _, err := h.objectByID(gone); !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("deleted object by ID after the upgrade: %v; want ErrObjectNotFound", err)
	}
	h.block()
	if got := h.m.UpgradedTo(); got != 0 {
		t.Fatalf("UpgradedTo of a later block = %d", got)
	}
	assertIndexComplete(t, h)
}

// assertIndexComplete checks the object-ID index holds exactly one entry
// per object record.
func assertIndexComplete(t *testing.T, h *harness) {
	t.Helper()
	r := h.m.reader()
	objs, err := r.scan(keyObject)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := r.scan(keyObjectBag)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(objs) {
		t.Fatalf("%d object-ID index entries for %d objects", len(entries), len(objs))
	}
}

// TestUpgradedChainMatchesANewOne: a version 2 chain upgraded to the
// newest version holds the same index a new chain built by the same
// transactions holds: the migrations leave the state as if the chain had
// had the index all along.
func TestUpgradedChainMatchesANewOne(t *testing.T) {
	old, fresh := newHarness(t, atVersion(VersionMerkle)), newHarness(t)
	for _, h := range []*harness{old, fresh} {
		bag, _ := h.channelBag(100, 1<<20)
		h.register(bag, "x")
		h.register(bag, "y")
	}
	at := old.height + 1 + chain.MinUpgradeDelay
	old.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version, Height: at})
	for old.height < at {
		old.block()
	}
	index := func(h *harness) []string {
		es, err := h.m.reader().scan(keyIndex)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.key)
		}
		return out
	}
	if a, b := index(old), index(fresh); strings.Join(a, "|") != strings.Join(b, "|") {
		t.Fatalf("indexes differ:\nupgraded %q\nnew      %q", a, b)
	}
	if old.version() != fresh.version() {
		t.Fatalf("versions %d and %d", old.version(), fresh.version())
	}
}

// TestUpgradeRefused: a wrong signer, an unknown version, a version not
// newer than the chain's, a past height or one too soon are each refused
// with an error that says so, and change nothing (harness.fail).
func TestUpgradeRefused(t *testing.T) {
	h := newHarness(t, atVersion(VersionMerkle))
	h.block()
	soon := func() int64 { return h.height + 1 + chain.MinUpgradeDelay }
	for _, k := range []chain.Key{distLead, mallory, alice} {
		h.fail(k, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: soon()}, chain.ErrUnauthorized)
	}
	tests := []struct {
		name string
		msg  func() chain.MsgUpgradeAppVersion
		want string
	}{
		{"version 1", func() chain.MsgUpgradeAppVersion { return chain.MsgUpgradeAppVersion{Version: 1, Height: soon()} },
			"runs app version 2 already"},
		{"same version", func() chain.MsgUpgradeAppVersion {
			return chain.MsgUpgradeAppVersion{Version: VersionMerkle, Height: soon()}
		}, "runs app version 2 already"},
		{"past height", func() chain.MsgUpgradeAppVersion {
			return chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: h.height}
		}, "is past"},
		{"too soon", func() chain.MsgUpgradeAppVersion {
			return chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: soon() - 1}
		}, "schedule it at height"},
		{"no version", func() chain.MsgUpgradeAppVersion { return chain.MsgUpgradeAppVersion{Height: soon()} },
			"name the app version"},
		{"no height", func() chain.MsgUpgradeAppVersion { return chain.MsgUpgradeAppVersion{Version: VersionObjectIndex} },
			"name the block height"},
	}
	for _, tt := range tests {
		r := h.fail(storageLead, tt.msg(), chain.ErrInvalid)
		if !strings.Contains(r.Log, tt.want) {
			t.Errorf("%s: %q does not say %q", tt.name, r.Log, tt.want)
		}
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade != nil || info.Version != VersionMerkle {
		t.Fatalf("after refusals: %+v", info)
	}

	// The earliest height is accepted; a chain at the newest version has
	// nothing to upgrade to.
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: soon()})
	r := newHarness(t).fail(storageLead, chain.MsgUpgradeAppVersion{Version: Version, Height: 100}, chain.ErrInvalid)
	if want := fmt.Sprintf("runs app version %d already", Version); !strings.Contains(r.Log, want) {
		t.Errorf("upgrade of a version %d chain: %q", Version, r.Log)
	}
}

// TestUpgradeRescheduled: a second schedule replaces the first, so the
// chain moves at the later height and not at the earlier one.
func TestUpgradeRescheduled(t *testing.T) {
	h := newHarness(t, atVersion(VersionMerkle))
	first := h.height + 1 + chain.MinUpgradeDelay
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: first})
	second := first + 5
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: second})
	for h.height < second-1 {
		h.block()
	}
	if h.version() != VersionMerkle {
		t.Fatalf("moved to version %d at height %d; the upgrade was moved to %d", h.version(), h.height, second)
	}
	h.block()
	if h.version() != VersionObjectIndex {
		t.Fatalf("version %d after height %d", h.version(), second)
	}
}

// TestUpgradeToAVersionThisReleaseLacks: whether an upgrade is scheduled
// depends on the chain alone, never on the binary — a later release
// replaying the chain must reach the same state — so a version this
// release does not run is scheduled, and at its height the node stops,
// naming the release to run, rather than go on under the old rules.
func TestUpgradeToAVersionThisReleaseLacks(t *testing.T) {
	h := newHarness(t)
	at := h.height + 1 + chain.MinUpgradeDelay
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version + 1, Height: at})
	for h.height < at-1 {
		h.block()
	}
	_, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: at, Time: genesisTime.Add(time.Duration(at) * time.Second), Hash: h.hashFor(at)}, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("run a release of version %d", Version+1)) {
		t.Fatalf("block %d, the upgrade to version %d this release lacks: %v; want the node stopped, naming the release", at, Version+1, err)
	}
}
