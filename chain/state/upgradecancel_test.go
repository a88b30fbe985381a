package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// TestUpgradeCancelled: the storage lead cancels the scheduled upgrade by
// its version and height; the event names it, the query shows none, and
// the chain passes the height at its version. Another signer, a wrong
// version or height, a cancel with nothing scheduled, or one with no
// version are refused with errors that say so and change nothing
// (harness.fail).
func TestUpgradeCancelled(t *testing.T) {
	h := newHarness(t)
	h.fail(storageLead, chain.MsgCancelAppVersionUpgrade{Version: Version + 1, Height: 100}, chain.ErrInvalid)
	// Far enough ahead for the refused cancels below, a block each, to
	// stay before the cut-off (TestUpgradeCancelCutoff).
	at := h.height + 1 + chain.MinUpgradeDelay + 20
	// A version this release lacks: were the cancel lost, the node would
	// stop at the height.
	plan := chain.UpgradePlan{Version: Version + 1, Height: at}
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: plan.Version, Height: plan.Height})
	for _, k := range []chain.Key{distLead, mallory, alice} {
		h.fail(k, chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at}, chain.ErrUnauthorized)
	}
	wrongs := []chain.MsgCancelAppVersionUpgrade{
		{Version: plan.Version, Height: at - 1},
		{Version: plan.Version, Height: at + 1},
		{Version: plan.Version + 1, Height: at},
		{Version: plan.Version - 1, Height: at},
	}
	want := fmt.Sprintf("the upgrade to app version %d is scheduled at block %d", plan.Version, plan.Height)
	for _, m := range wrongs {
		r := h.fail(storageLead, m, chain.ErrInvalid)
		if !strings.Contains(r.Log, "is not the scheduled upgrade") || !strings.Contains(r.Log, want) ||
			!strings.Contains(r.Log, fmt.Sprintf("--version %d --height %d", plan.Version, plan.Height)) {
			t.Errorf("cancel %+v: %q does not name the scheduled version and height", m, r.Log)
		}
	}
	if r := h.fail(storageLead, chain.MsgCancelAppVersionUpgrade{Height: at}, chain.ErrInvalid); !strings.Contains(r.Log, "--version N") {
		t.Errorf("cancel with no version: %q", r.Log)
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade == nil || *info.Upgrade != plan {
		t.Fatalf("after refused cancels: %+v; want the plan %+v", info, plan)
	}

	r := h.do(storageLead, chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at})
	if ev := event[chain.AppVersionUpgradeCancelled](t, r); ev.Version != plan.Version || ev.Height != at {
		t.Fatalf("cancelled event %+v; want %+v", ev, plan)
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade != nil || info.Version != Version {
		t.Fatalf("after the cancel: %+v", info)
	}
	r = h.fail(storageLead, chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at}, chain.ErrInvalid)
	if !strings.Contains(r.Log, "no upgrade is scheduled") {
		t.Errorf("second cancel: %q", r.Log)
	}
	for h.height <= at {
		h.block()
	}
	if v := h.version(); v != Version {
		t.Fatalf("version %d past the cancelled upgrade's height", v)
	}
}

// TestUpgradeCancelSparesASameHeightReplacement: a schedule replaced by
// another at the same height, and a cancel written for the first that the
// chain takes after the replacement (the lead's nonces may run out of
// order, so signing order does not decide), is refused naming the
// replacement, which stays and is cancelled by its own version.
func TestUpgradeCancelSparesASameHeightReplacement(t *testing.T) {
	h := newHarness(t)
	at := h.height + 1 + chain.MinUpgradeDelay + 5
	old := chain.MsgCancelAppVersionUpgrade{Version: Version + 1, Height: at}
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version + 1, Height: at})
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version + 2, Height: at}) // replaces it
	r := h.fail(storageLead, old, chain.ErrInvalid)
	if !strings.Contains(r.Log, fmt.Sprintf("the upgrade to app version %d is scheduled at block %d", Version+2, at)) {
		t.Errorf("the cancel for the replaced schedule: %q does not name the replacement", r.Log)
	}
	replacement := chain.UpgradePlan{Version: Version + 2, Height: at}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade == nil || *info.Upgrade != replacement {
		t.Fatalf("after the cancel for the replaced schedule: %+v; want the replacement %+v", info, replacement)
	}
	r = h.do(storageLead, chain.MsgCancelAppVersionUpgrade{Version: Version + 2, Height: at})
	if ev := event[chain.AppVersionUpgradeCancelled](t, r); ev != chain.AppVersionUpgradeCancelled(replacement) {
		t.Fatalf("cancelled event %+v; want %+v", ev, replacement)
	}
}

// TestUpgradeCancelComesWithVersion5: a version 4 chain refuses the cancel
// as unknown, using no nonce, as the releases before answered, in CheckTx,
// a proposal and a block alike; so its lead moves a schedule later only.
// The upgrade to 5 brings it: the lead then cancels a schedule.
func TestUpgradeCancelComesWithVersion5(t *testing.T) {
	for _, v := range []uint64{VersionObjectIndex, VersionAdmission} {
		h := newHarness(t, atVersion(v))
		at := h.height + 1 + chain.MinUpgradeDelay + 5
		h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionUpgradeCancel, Height: at})
		msg := chain.MsgCancelAppVersionUpgrade{Version: VersionUpgradeCancel, Height: at}
		h.refused(storageLead, msg, chain.ErrUnknownMsg)
		tx := h.sign(storageLead, msg)
		h.nonces[storageLead.Account()]--
		// Releases before version 5 cannot decode it and refuse its
		// proposal: so does this one, or votes would split mid-rollout.
		if err := h.m.CheckProposal([][]byte{tx}); err == nil || !strings.Contains(err.Error(), "cancel_app_version_upgrade") {
			t.Fatalf("a version %d proposal with the cancel: CheckProposal = %v; want refused", v, err)
		}
		r := h.block(tx)[0]
		wantCode(t, r, chain.ErrUnknownMsg)
		if !strings.Contains(r.Log, "needs app version 5") {
			t.Errorf("version %d block: %q does not name the version", v, r.Log)
		}
		if n := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, storageLead.Account()).Nonce; n != h.nonces[storageLead.Account()] {
			t.Fatalf("the cancel on version %d used a nonce: %d; want %d", v, n, h.nonces[storageLead.Account()])
		}
		if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade == nil || info.Upgrade.Height != at {
			t.Fatalf("version %d: the refused cancel dropped the plan: %+v", v, info)
		}
		for h.height < at {
			h.block()
		}
		if got := h.version(); got != VersionUpgradeCancel {
			t.Fatalf("version %d after the upgrade from %d", got, v)
		}
		later := h.height + 1 + chain.MinUpgradeDelay
		h.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version + 1, Height: later})
		cancel := h.sign(storageLead, chain.MsgCancelAppVersionUpgrade{Version: Version + 1, Height: later})
		if err := h.m.CheckProposal([][]byte{cancel}); err != nil {
			t.Fatalf("a version 5 proposal with the cancel: %v", err)
		}
		event[chain.AppVersionUpgradeCancelled](t, h.block(cancel)[0])
	}
}

// TestUpgradeCancelCutoff: a cancel is taken up to block
// LastUpgradeCancelHeight — CheckTx and a proposal admit it for that
// block — and refused from the block after it on, in CheckTx, a proposal
// and the block alike, naming the last block that could cancel, leaving
// the plan. A cancel in the upgrade's own block, which executes before
// the upgrade runs, no longer drops it: the block runs the upgrade, to a
// version this release lacks, so the node stops as the plan said.
func TestUpgradeCancelCutoff(t *testing.T) {
	h := newHarness(t)
	at := h.height + 1 + chain.MinUpgradeDelay
	plan := chain.UpgradePlan{Version: Version + 1, Height: at}
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: plan.Version, Height: plan.Height})
	last := chain.LastUpgradeCancelHeight(at)
	if last != at-2 {
		t.Fatalf("LastUpgradeCancelHeight(%d) = %d; want %d", at, last, at-2)
	}
	for h.height < last-1 {
		h.block()
	}
	cancel := chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at}
	tx := h.sign(storageLead, cancel)
	h.nonces[storageLead.Account()]--
	if err := h.m.CheckTx(tx); err != nil {
		t.Fatalf("CheckTx(cancel) for block %d, the last that may cancel: %v", h.height+1, err)
	}
	if err := h.m.CheckProposal([][]byte{tx}); err != nil {
		t.Fatalf("a proposal for block %d with the cancel: %v", h.height+1, err)
	}
	h.block() // the cancel not taken: block last passes without it

	tooLate := fmt.Sprintf("must be in block %d or earlier", last)
	h.refused(storageLead, cancel, chain.ErrInvalid)
	// A schedule replacing the plan would drop it as a cancel does: the
	// same cut-off.
	replace := chain.MsgUpgradeAppVersion{Version: plan.Version, Height: at + chain.MinUpgradeDelay}
	tx = h.sign(storageLead, replace)
	if err := h.m.CheckTx(tx); !errors.Is(err, chain.ErrInvalid) || !strings.Contains(err.Error(), "too late to replace") || !strings.Contains(err.Error(), tooLate) {
		t.Fatalf("CheckTx(replacing schedule) for block %d: %v; want refused naming %q", h.height+1, err, tooLate)
	}
	h.nonces[storageLead.Account()]--
	tx = h.sign(storageLead, cancel)
	if err := h.m.CheckTx(tx); err == nil || !strings.Contains(err.Error(), tooLate) {
		t.Fatalf("CheckTx(cancel) for block %d: %v; want refused naming %q", h.height+1, err, tooLate)
	}
	if err := h.m.CheckProposal([][]byte{tx}); err == nil || !strings.Contains(err.Error(), tooLate) {
		t.Fatalf("a proposal for block %d with the cancel: %v; want refused naming %q", h.height+1, err, tooLate)
	}
	h.nonces[storageLead.Account()]--
	r := h.fail(storageLead, cancel, chain.ErrInvalid) // block at−1
	if !strings.Contains(r.Log, tooLate) || !strings.Contains(r.Log, fmt.Sprintf("this is block %d", at-1)) {
		t.Errorf("cancel in block %d: %q does not name the cut-off", at-1, r.Log)
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade == nil || *info.Upgrade != plan {
		t.Fatalf("after the late cancel: %+v; want the plan %+v", info, plan)
	}

	// Block at: the cancel and a replacement execute before the upgrade
	// and are refused, so the upgrade runs — to a version this release
	// lacks, which stops it.
	h.height++
	late := [][]byte{h.sign(storageLead, cancel), h.sign(storageLead, replace)}
	res, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: at, Time: genesisTime.Add(time.Duration(at) * time.Second), Hash: h.hashFor(at)}, late)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("moves to app version %d", plan.Version)) {
		t.Fatalf("block %d with a cancel: results %+v, err %v; want the upgrade run, stopping this release", at, res, err)
	}
}

// TestUpgradeReplacedLateBelowVersion5: below version 5 a schedule is the
// only way to hold an upgrade back, and the releases before took one up to
// the upgrade's own block: so does this one, so their blocks replay the
// same. A replacement in block H moves the upgrade at H later.
func TestUpgradeReplacedLateBelowVersion5(t *testing.T) {
	h := newHarness(t, atVersion(VersionAdmission))
	at := h.height + 1 + chain.MinUpgradeDelay
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionUpgradeCancel, Height: at})
	for h.height < at-1 {
		h.block()
	}
	later := chain.UpgradePlan{Version: VersionUpgradeCancel, Height: at + chain.MinUpgradeDelay}
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: later.Version, Height: later.Height}) // block at
	if got := h.version(); got != VersionAdmission {
		t.Fatalf("version %d after block %d, whose replacement moved the upgrade; want %d", got, at, VersionAdmission)
	}
	if info := queryAs[chain.AppVersionInfo](t, h.m, chain.QueryAppVersion, nil); info.Upgrade == nil || *info.Upgrade != later {
		t.Fatalf("plan after the replacement: %+v; want %+v", info.Upgrade, later)
	}
}
