package state

import (
	"fmt"
	"strings"
	"testing"

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
	at := h.height + 1 + chain.MinUpgradeDelay
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
	for h.height <= at {
		h.block()
	}
	if v := h.version(); v != Version {
		t.Fatalf("version %d past the cancelled upgrade's height", v)
	}
	r = h.fail(storageLead, chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at}, chain.ErrInvalid)
	if !strings.Contains(r.Log, "no upgrade is scheduled") {
		t.Errorf("second cancel: %q", r.Log)
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
