package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/state"
)

// TestChainUpgradeCommand: on a chain whose genesis names app version 2,
// `satchel chain upgrade` refuses bad flags before it signs anything, the
// chain refuses an unknown version, a height too soon and a signer other
// than the storage lead with errors that say so, and a good schedule moves
// the chain to version 3 at its height, which `satchel chain status` shows
// before and after.
func TestChainUpgradeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain node")
	}
	tc := startTestChainAtVersion(t, state.VersionMerkle)
	ctx := context.Background()
	lead := tc.storageLead.Account()
	before := tc.nonce(lead)

	tc.fails([]string{`required flag(s) "height" not set`}, "chain", "upgrade", "--version", "3", "-y")
	tc.fails([]string{"name the app version"}, "chain", "upgrade", "--version", "0", "--height", "100", "-y")
	tc.fails([]string{"name the block height"}, "chain", "upgrade", "--version", "3", "--height", "-5", "-y")
	tc.fails([]string{"app version 9 is not one this release runs"}, "chain", "upgrade", "--version", "9", "--height", "100000", "-y")
	tc.fails([]string{"runs app version 2 already"}, "chain", "upgrade", "--version", "2", "--height", "100000", "-y")
	tc.fails([]string{"is past", "schedule it at height"}, "chain", "upgrade", "--version", "3", "--height", "1", "-y")
	other, _ := newKeyFile(t, tc.home, "other.key")
	tc.fails([]string{"only the storage lead", "sign with the storage lead key"}, "chain", "upgrade", "--version", "3", "--height", "100000", "-y", "-k", other)

	var st node.Status
	tc.okJSON(&st, "chain", "status")
	if st.AppVersion != state.VersionMerkle || st.Upgrade != nil {
		t.Fatalf("status before the upgrade: version %d, upgrade %+v", st.AppVersion, st.Upgrade)
	}
	if got := tc.nonce(lead); got != before+2 {
		t.Fatalf("lead nonce %d after two upgrades the chain refused; want %d (the unknown version refused before sending)", got, before+2)
	}

	at := st.Height + chain.MinUpgradeDelay + 20
	var res struct {
		Version       uint64 `json:"version"`
		UpgradeHeight int64  `json:"upgradeHeight"`
	}
	tc.okJSON(&res, "chain", "upgrade", "--version", "3", "--height", fmt.Sprint(at), "-y")
	if res.Version != 3 || res.UpgradeHeight != at {
		t.Fatalf("upgrade result %+v", res)
	}
	if out := tc.ok("chain", "status"); !strings.Contains(out, fmt.Sprintf("app version  2 (upgrade to 3 scheduled at the end of block %d)", at)) {
		t.Fatalf("status does not show the scheduled upgrade:\n%s", out)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tc.node.Transport().WaitForHeight(waitCtx, at); err != nil {
		t.Fatal(err)
	}
	tc.okJSON(&st, "chain", "status")
	if st.AppVersion != state.VersionObjectIndex || st.Upgrade != nil {
		t.Fatalf("status after the upgrade: version %d, upgrade %+v", st.AppVersion, st.Upgrade)
	}
	tc.fails([]string{"runs app version 3 already"}, "chain", "upgrade", "--version", "3", "--height", fmt.Sprint(at+100), "-y")
}

// TestChainUpgradeCancelCommand: `satchel chain upgrade --cancel --version
// N --height H` needs both flags; a version 4 chain refuses the cancel as
// needing version 5; on a chain the command moved to version 5, where an
// upgrade is scheduled and then replaced at the same height, the storage
// lead's cancel naming another height, the replaced version, or another
// key's, is refused with an error that names the scheduled upgrade and
// leaves it (chain status); the right one drops it.
func TestChainUpgradeCancelCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain node")
	}
	tc := startTestChainAtVersion(t, state.VersionAdmission)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tc.fails([]string{`required flag(s) "version" not set`}, "chain", "upgrade", "--cancel", "--height", "100", "-y")
	tc.fails([]string{`required flag(s) "height" not set`}, "chain", "upgrade", "--cancel", "--version", "5", "-y")
	tc.fails([]string{"needs app version 5"}, "chain", "upgrade", "--cancel", "--version", "5", "--height", "100", "-y")

	var st node.Status
	tc.okJSON(&st, "chain", "status")
	at := st.Height + chain.MinUpgradeDelay + 10
	tc.ok("chain", "upgrade", "--version", "5", "--height", fmt.Sprint(at), "-y")
	if err := tc.node.Transport().WaitForHeight(ctx, at+1); err != nil {
		t.Fatal(err)
	}
	tc.okJSON(&st, "chain", "status")
	if st.AppVersion != state.VersionUpgradeCancel {
		t.Fatalf("status after the upgrade: version %d", st.AppVersion)
	}
	tc.fails([]string{"no upgrade is scheduled"}, "chain", "upgrade", "--cancel", "--version", "6", "--height", fmt.Sprint(at+100), "-y")

	// Upgrades this release cannot run (so the command would not schedule
	// them): were the last not cancelled, the node would stop at it. The
	// second replaces the first at the same height, far enough ahead that a
	// loaded machine's commands cannot let the chain reach it (and halt) first.
	replaced := chain.UpgradePlan{Version: state.Version + 1, Height: st.Height + chain.MinUpgradeDelay + 400}
	plan := chain.UpgradePlan{Version: state.Version + 2, Height: replaced.Height}
	for _, p := range []chain.UpgradePlan{replaced, plan} {
		if _, err := tc.client.Submit(ctx, tc.storageLead, chain.MsgUpgradeAppVersion{Version: p.Version, Height: p.Height}); err != nil {
			t.Fatal(err)
		}
	}
	v, h := fmt.Sprint(plan.Version), fmt.Sprint(plan.Height)
	named := []string{"is not the scheduled upgrade", "--version " + v + " --height " + h}
	tc.fails(named, "chain", "upgrade", "--cancel", "--version", v, "--height", fmt.Sprint(plan.Height+1), "-y")
	tc.fails(named, "chain", "upgrade", "--cancel", "--version", fmt.Sprint(replaced.Version), "--height", h, "-y")
	other, _ := newKeyFile(t, tc.home, "other.key")
	tc.fails([]string{"only the storage lead", "sign with the storage lead key"}, "chain", "upgrade", "--cancel", "--version", v, "--height", h, "-y", "-k", other)
	scheduled := fmt.Sprintf("(upgrade to %d scheduled at the end of block %d; a cancel must be in block %d or earlier)", plan.Version, plan.Height, plan.Height-2)
	if out := tc.ok("chain", "status"); !strings.Contains(out, scheduled) {
		t.Fatalf("status after refused cancels does not show the schedule %q:\n%s", scheduled, out)
	}

	var res struct {
		Cancelled     bool   `json:"cancelled"`
		Version       uint64 `json:"version"`
		UpgradeHeight int64  `json:"upgradeHeight"`
	}
	tc.okJSON(&res, "chain", "upgrade", "--cancel", "--version", v, "--height", h, "-y")
	if !res.Cancelled || res.Version != plan.Version || res.UpgradeHeight != plan.Height {
		t.Fatalf("cancel result %+v; want the plan %+v", res, plan)
	}
	tc.okJSON(&st, "chain", "status")
	if st.Upgrade != nil || st.AppVersion != state.VersionUpgradeCancel {
		t.Fatalf("status after the cancel: version %d, upgrade %+v", st.AppVersion, st.Upgrade)
	}
}

// startTestChainAtVersion starts a test chain whose genesis names app
// version v, making an empty block every 50 ms so upgrade heights come soon.
func startTestChainAtVersion(t *testing.T, v uint64) *testChain {
	t.Helper()
	return startTestChainWith(t, func(home string) {
		path := node.GenesisPath(home)
		doc, err := cmttypes.GenesisDocFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc.ConsensusParams.Version.App = v
		if err := doc.SaveAs(path); err != nil {
			t.Fatal(err)
		}
	}, node.WithEmptyBlockInterval(50*time.Millisecond))
}

// `satchel chain status` names the last block a cancel of the scheduled
// upgrade may be in until that block is committed, then says it is too
// late (before, it named that block as if it were still to come); a chain
// below version 5, which knows no cancel, names none. A chain that reaches
// the cut-off cannot be shown here on a running node: with no cancel
// possible it stops at the upgrade of a version this release does not run.
func TestChainStatusUpgradeCancelWindow(t *testing.T) {
	plan := &chain.UpgradePlan{Version: state.VersionUpgradeCancel + 1, Height: 1500}
	open := "(upgrade to 6 scheduled at the end of block 1500; a cancel must be in block 1498 or earlier)"
	late := "(upgrade to 6 scheduled at the end of block 1500; too late to cancel: the last block that could was 1498)"
	for _, tc := range []struct {
		height  int64
		version uint64
		plan    *chain.UpgradePlan
		want    string
	}{
		{1200, state.VersionUpgradeCancel, nil, "5"},
		{1200, state.VersionUpgradeCancel, plan, "5 " + open},
		{1497, state.VersionUpgradeCancel, plan, "5 " + open}, // a cancel sent now may land in 1498
		{1498, state.VersionUpgradeCancel, plan, "5 " + late},
		{1499, state.VersionUpgradeCancel, plan, "5 " + late},
		{1499, state.VersionAdmission, &chain.UpgradePlan{Version: 5, Height: 1500}, "4 (upgrade to 5 scheduled at the end of block 1500)"},
	} {
		st := node.Status{Height: tc.height, AppVersion: tc.version, Upgrade: tc.plan}
		if got := appVersionLine(st); got != tc.want {
			t.Errorf("at height %d, version %d, plan %+v: %q; want %q", tc.height, tc.version, tc.plan, got, tc.want)
		}
	}
}
