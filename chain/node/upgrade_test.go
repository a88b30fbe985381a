package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// TestUpgradeOfARunningChain: a chain whose genesis names app version 2,
// with an object registered, is upgraded to version 3 by the storage lead.
// Before the upgrade height the object is not found by its ID (version 2
// has no index) and a member's upgrade is refused; the upgrade block ends
// with the migration, so afterwards the old object and new ones are found
// by ID, the node reports version 3 and the next header names it. The
// validator, its state deleted, replays its own blocks through the upgrade
// to the app hashes it committed and goes on; a full node joining from
// genesis replays them to the same app hash.
func TestUpgradeOfARunningChain(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	lead, member := mustKey(t), mustKey(t)
	home := version2Home(t, lead)
	// Fixed addresses, so the restarted validator is where the full node
	// looks for it; quick empty blocks, so the upgrade height comes soon.
	opts := []Option{WithRPCAddr(freeAddr(t)), WithP2PAddr(freeAddr(t)), WithEmptyBlockInterval(100 * time.Millisecond)}
	val := startNode(t, home, opts...)
	c := chain.NewClient(val.Transport())

	bag, reg, _ := registerObject(ctx, t, c, lead, member)
	old := reg.Objects[0].ID
	if _, err := c.ObjectByID(ctx, old); !errors.Is(err, chain.ErrNotFound) || errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("ObjectByID before the upgrade: %v; want plain not found", err)
	}
	if _, err := c.Submit(ctx, member, chain.MsgUpgradeAppVersion{Version: state.VersionObjectIndex, Height: 1000}); !errors.Is(err, chain.ErrUnauthorized) {
		t.Fatalf("a member's upgrade: %v; want ErrUnauthorized", err)
	}
	if v, err := c.AppVersion(ctx); err != nil || v.Version != state.VersionMerkle || v.Upgrade != nil {
		t.Fatalf("app version after a refused upgrade: %+v, %v", v, err)
	}

	latest, err := val.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := latest + chain.MinUpgradeDelay + 5 // room for the transaction to wait for its block
	if _, err := c.Submit(ctx, lead, chain.MsgUpgradeAppVersion{Version: state.VersionObjectIndex, Height: at}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.AppVersion(ctx); err != nil || v.Upgrade == nil || *v.Upgrade != (chain.UpgradePlan{Version: state.VersionObjectIndex, Height: at}) {
		t.Fatalf("app version after scheduling: %+v, %v", v, err)
	}
	if err := val.Transport().WaitForHeight(ctx, at+1); err != nil {
		t.Fatal(err)
	}

	if o, err := c.ObjectByID(ctx, old); err != nil || o.Bag != bag {
		t.Fatalf("the object registered before the upgrade, by ID: %+v, %v", o, err)
	}
	evs, err := val.Transport().BlockEvents(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if up, ok := chain.FindEvent[chain.AppVersionUpgraded](evs.Events); !ok || up.To != state.VersionObjectIndex || up.Height != at {
		t.Fatalf("events of the upgrade block: %v", evs.Events)
	}
	assertVersion(ctx, t, "validator", val, at)

	res, err := c.Submit(ctx, member, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{
		{Size: 7, ContentID: "bafkreifb7tsdmocu76eiz72lrz4hlvqayjuchecbfkgppgzx2cyrcsfq7i"}}})
	if err != nil {
		t.Fatal(err)
	}
	added, _ := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	if o, err := c.ObjectByID(ctx, added.Objects[0].ID); err != nil || o.Bag != bag {
		t.Fatalf("an object registered after the upgrade, by ID: %+v, %v", o, err)
	}

	// The validator, its state deleted, replays its own blocks from
	// genesis at restart (CometBFT checks it reaches the app hash it
	// committed) and goes on.
	if err := val.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(MachineDir(home)); err != nil {
		t.Fatal(err)
	}
	val = startNode(t, home, opts...)
	c = chain.NewClient(val.Transport())
	assertVersion(ctx, t, "restarted validator", val, at)
	res, err = c.Submit(ctx, member, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{
		{Size: 9, ContentID: "bafkreibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe"}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []chain.ObjectID{old, added.Objects[0].ID}
	added, _ = chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	ids = append(ids, added.Objects[0].ID)
	for _, id := range ids {
		if o, err := c.ObjectByID(ctx, id); err != nil || o.Bag != bag {
			t.Fatalf("the restarted validator: object %d by ID: %+v, %v", id, o, err)
		}
	}

	// A node joining from genesis replays the upgrade to the same state.
	full := startNode(t, filepath.Join(t.TempDir(), "full"),
		WithGenesisDoc(val.GenesisFile()), WithPersistentPeers(val.P2PAddress()))
	h, ha, hb := sameState(ctx, t, val, full, res.Height)
	if ha != hb || ha == "" {
		t.Fatalf("at height %d: validator app hash %s, joined node %s", h, ha, hb)
	}
	assertVersion(ctx, t, "joined node", full, at)
	for _, id := range ids {
		if o, err := chain.NewClient(full.Transport()).ObjectByID(ctx, id); err != nil || o.Bag != bag {
			t.Fatalf("the joined node: object %d by ID: %+v, %v", id, o, err)
		}
	}
}

// assertVersion checks that n reports app version 3 (Info, Status) and
// that the headers name version 2 up to the upgrade block at and 3 after.
func assertVersion(ctx context.Context, t *testing.T, name string, n *Node, at int64) {
	t.Helper()
	info, err := n.app.Info(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AppVersion != state.VersionObjectIndex || st.AppVersion != state.VersionObjectIndex {
		t.Errorf("%s reports app version %d (status %d); want %d", name, info.AppVersion, st.AppVersion, state.VersionObjectIndex)
	}
	if err := n.Transport().WaitForHeight(ctx, at+1); err != nil {
		t.Fatal(err)
	}
	for h, want := range map[int64]uint64{at: state.VersionMerkle, at + 1: state.VersionObjectIndex} {
		if meta := n.cmt.BlockStore().LoadBlockMeta(h); meta == nil || meta.Header.Version.App != want {
			t.Errorf("%s: header at height %d: %+v; want app version %d", name, h, meta, want)
		}
	}
}

// TestUpgradeAcrossValidators: three validators of a version 2 chain agree
// on the upgrade: each migrates at the same height to the same app hash,
// the header after names version 3 (a validator that disagreed would
// refuse the proposals), and each finds the old object by its ID.
func TestUpgradeAcrossValidators(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	if testing.Short() {
		t.Skip("3 validators")
	}
	tn := newTestNetAt(t, 3, state.VersionMerkle)
	tn.waitHeight(0, 2, 30*time.Second)
	c := tn.client(0)
	bag, reg, res := registerObject(ctx, t, c, tn.lead, mustKey(t))
	at := res.Height + chain.MinUpgradeDelay + 10
	if _, err := c.Submit(ctx, tn.lead, chain.MsgUpgradeAppVersion{Version: state.VersionObjectIndex, Height: at}); err != nil {
		t.Fatal(err)
	}
	for i := range tn.nodes {
		tn.waitHeight(i, at+1, 60*time.Second)
	}
	tn.sameChain()
	for i, n := range tn.nodes {
		assertVersion(ctx, t, fmt.Sprint("validator ", i), n, at)
		if o, err := tn.client(i).ObjectByID(ctx, reg.Objects[0].ID); err != nil || o.Bag != bag {
			t.Fatalf("validator %d: the old object by ID: %+v, %v", i, o, err)
		}
	}
}

// TestUpgradeCancelledOnARunningChain: on a chain whose genesis names app
// version 4, the storage lead's cancel is refused as unknown and leaves the
// schedule, which moves the chain to version 5; there the lead schedules
// an upgrade to a version this release lacks — one that would stop the
// node at its height — then replaces it by another at the same height. A
// member's cancel, one naming another height, and one naming the replaced
// version are refused with errors that say so and leave the replacement;
// the lead's right one drops it, with its event, and the node goes past the
// height at version 5.
func TestUpgradeCancelledOnARunningChain(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	lead, member := mustKey(t), mustKey(t)
	home := version2Home(t, lead)
	setGenesisAppVersion(t, GenesisPath(home), state.VersionAdmission)
	val := startNode(t, home, WithEmptyBlockInterval(100*time.Millisecond))
	c := chain.NewClient(val.Transport())
	if _, err := c.Submit(ctx, member, chain.MsgCreateMember{}); err != nil {
		t.Fatal(err)
	}
	// schedule plans an upgrade to v, ahead blocks past the least delay:
	// a plan the test cancels is far ahead, so a loaded machine's round
	// trips cannot let the chain reach it (and halt) first.
	schedule := func(v uint64, ahead int64) chain.UpgradePlan {
		t.Helper()
		latest, err := val.Transport().LatestHeight(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := chain.UpgradePlan{Version: v, Height: latest + chain.MinUpgradeDelay + ahead}
		if _, err := c.Submit(ctx, lead, chain.MsgUpgradeAppVersion{Version: p.Version, Height: p.Height}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	planIs := func(when string, want *chain.UpgradePlan) {
		t.Helper()
		v, err := c.AppVersion(ctx)
		if err != nil || (v.Upgrade == nil) != (want == nil) || want != nil && *v.Upgrade != *want {
			t.Fatalf("%s: app version %+v, %v; want the plan %+v", when, v, err, want)
		}
	}

	first := schedule(state.VersionUpgradeCancel, 5)
	_, err := c.Submit(ctx, lead, chain.MsgCancelAppVersionUpgrade{Version: first.Version, Height: first.Height})
	if !errors.Is(err, chain.ErrUnknownMsg) || !strings.Contains(err.Error(), "needs app version 5") {
		t.Fatalf("a cancel on a version 4 chain: %v; want unknown, needing version 5", err)
	}
	planIs("after a cancel on version 4", &first)
	if err := val.Transport().WaitForHeight(ctx, first.Height+1); err != nil {
		t.Fatal(err)
	}

	replaced := schedule(state.Version+1, 200)
	plan := chain.UpgradePlan{Version: state.Version + 2, Height: replaced.Height}
	if _, err := c.Submit(ctx, lead, chain.MsgUpgradeAppVersion{Version: plan.Version, Height: plan.Height}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, member, chain.MsgCancelAppVersionUpgrade(plan)); !errors.Is(err, chain.ErrUnauthorized) {
		t.Fatalf("a member's cancel: %v; want ErrUnauthorized", err)
	}
	scheduled := fmt.Sprintf("the upgrade to app version %d is scheduled at block %d", plan.Version, plan.Height)
	for _, m := range []chain.MsgCancelAppVersionUpgrade{
		{Version: plan.Version, Height: plan.Height + 1},
		chain.MsgCancelAppVersionUpgrade(replaced), // written for the schedule the replacement replaced
	} {
		_, err = c.Submit(ctx, lead, m)
		if !errors.Is(err, chain.ErrInvalid) || !strings.Contains(err.Error(), scheduled) {
			t.Fatalf("cancel %+v: %v; want ErrInvalid naming %q", m, err, scheduled)
		}
	}
	planIs("after refused cancels", &plan)

	res, err := c.Submit(ctx, lead, chain.MsgCancelAppVersionUpgrade(plan))
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := chain.FindEvent[chain.AppVersionUpgradeCancelled](res.Result.Events); !ok || ev != chain.AppVersionUpgradeCancelled(plan) {
		t.Fatalf("events of the cancel: %v; want AppVersionUpgradeCancelled %+v", res.Result.Events, plan)
	}
	planIs("after the cancel", nil)
	if err := val.Transport().WaitForHeight(ctx, plan.Height+2); err != nil {
		t.Fatalf("the node past the cancelled upgrade's height: %v", err)
	}
	st, err := val.Status(ctx)
	if err != nil || st.AppVersion != state.VersionUpgradeCancel || st.Upgrade != nil {
		t.Fatalf("status past the cancelled height: %+v, %v", st, err)
	}
}
