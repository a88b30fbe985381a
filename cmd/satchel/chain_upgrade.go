package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/state"
)

// appVersionLine is the app version a status names, and the upgrade
// scheduled: on a chain that knows cancels, the last block a cancel may be
// in, or, that block committed (a cancel sent now lands after it), that
// it is too late.
func appVersionLine(st node.Status) string {
	s := fmt.Sprint(st.AppVersion)
	p := st.Upgrade
	var last int64
	if p != nil {
		last = chain.LastUpgradeCancelHeight(p.Height)
	}
	switch {
	case p == nil:
	case st.AppVersion >= state.VersionUpgradeCancel && st.Height >= last:
		s += fmt.Sprintf(" (upgrade to %d scheduled at the end of block %d; too late to cancel: the last block that could was %d)", p.Version, p.Height, last)
	case st.AppVersion >= state.VersionUpgradeCancel:
		s += fmt.Sprintf(" (upgrade to %d scheduled at the end of block %d; a cancel must be in block %d or earlier)", p.Version, p.Height, last)
	default:
		s += fmt.Sprintf(" (upgrade to %d scheduled at the end of block %d)", p.Version, p.Height)
	}
	return s
}

func newChainUpgradeCmd(app *App) *cobra.Command {
	var version uint64
	var height int64
	var cancel bool
	return txCommand{
		use:   "upgrade --version N --height H [--cancel]",
		short: "Schedule (or cancel) the chain's move to a newer app version at a block height. Requires the storage lead",
		long: `Schedule a governed upgrade of the running chain to app version N. Block H
ends with the migration to version N on every node (for version 3: the
object-ID index is built from every object registered before; for version
4: block proposals are held to mempool admission's rules, and members may
be created by invitation; for version 5: a scheduled upgrade may be
cancelled), and block H+1 is the first that runs by version N's rules; its
header names the version. H must be at least ` + fmt.Sprint(chain.MinUpgradeDelay) + ` blocks after the block that
takes this transaction; scheduling again replaces a schedule that has not
run (on a version 5 chain, only up to block H-2, as a cancel).

--cancel --version N --height H drops the upgrade to version N scheduled
at block H (both as ` + "`satchel chain status`" + ` shows them). Another version
or height is refused, naming the one scheduled, so a cancel cannot drop a
schedule that replaced the one it meant, even at the same height. A cancel
must be in block H-2 or earlier: from block H-1 on it is refused and the
upgrade runs, so every node sees the plan final a block before it, and
` + "`satchel chain status`" + ` says when it is too late. Blocks come 1 to 10 times a
second at the default block times, so a schedule at the minimum runs 1 to
10 seconds later and can be cancelled for 0.8 to 8 of them: schedule
thousands of blocks ahead (36000: at least an hour) to leave time to check
the release and to cancel. Only a chain at app version 5 or later knows
the cancel; a version 4 chain
refuses it as unknown, so an upgrade from 4 to 5 cannot be cancelled: to
hold it back, schedule version 5 again at a later height.

Before scheduling, run a satchel release that knows version N on every
node: a node without it refuses the transaction's block, and one that
cannot run version N stops at height H. ` + "`satchel chain status`" + ` shows the
version a chain runs and the upgrade scheduled.`,
		example: `  # with a release that runs version 6, on a chain at version 5:
  satchel chain status                                        # height 1200, app version 5
  satchel chain upgrade --version 6 --height 1500 -y
  satchel chain upgrade --cancel --version 6 --height 1500 -y # by block 1498

  # a version 4 chain cannot cancel its upgrade to 5; move it later instead:
  satchel chain upgrade --version 5 --height 1800 -y`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().Uint64Var(&version, "version", 0, "the app `VERSION` to move to (required); with --cancel, the scheduled one")
			cmd.Flags().Int64Var(&height, "height", 0, "the block `HEIGHT` that ends with the migration (required); with --cancel, the scheduled one")
			cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel the upgrade to --version scheduled at --height (app version 5 and later)")
			requiredFlags(cmd, "version", "height")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			if cancel {
				return cancelUpgradeTx(version, height), nil
			}
			// The chain schedules any newer version (only its state may
			// decide); a version this release does not run would stop
			// every node at the height, so it is refused here.
			if version > state.Version {
				return tx{}, fmt.Errorf("app version %d is not one this release runs (up to %d): every node would stop at block %d until it runs a release of version %d; install one on every node, then schedule the upgrade with it", version, state.Version, height, version)
			}
			m := chain.MsgUpgradeAppVersion{Version: version, Height: height}
			action := fmt.Sprintf("Upgrade the chain to app version %d at the end of block %d", version, height)
			line := fmt.Sprintf("scheduled the upgrade to app version %d: block %d ends with the migration, block %d is the first by its rules", version, height, height+1)
			return tx{role: leadRole(chain.StorageGroup), msg: m, action: action,
				done: doneLine(line, map[string]any{"version": version, "upgradeHeight": height})}, nil
		},
	}.command(app)
}

// cancelUpgradeTx is the storage lead's cancel of the upgrade to version
// scheduled at height. Unlike a schedule, it may name a version this
// release does not run: dropping such a schedule is what keeps the nodes
// from stopping at its height.
func cancelUpgradeTx(version uint64, height int64) tx {
	m := chain.MsgCancelAppVersionUpgrade{Version: version, Height: height}
	action := fmt.Sprintf("Cancel the upgrade to app version %d scheduled at the end of block %d", version, height)
	done := func([]chain.Event) (string, map[string]any) {
		line := fmt.Sprintf("cancelled the upgrade to app version %d scheduled at block %d: the chain stays at its app version", version, height)
		return line, map[string]any{"cancelled": true, "version": version, "upgradeHeight": height}
	}
	return tx{role: leadRole(chain.StorageGroup), msg: m, action: action, done: done}
}
