package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

// The storage lead's commands for the limits that protect the directory:
// how long a data object may stay pending, how many members a block may
// register.

func parsePositive(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s %q: want a whole number above 0", what, s)
	}
	return n, nil
}

func newStoragePendingObjectExpiryCmd(app *App) *cobra.Command {
	return txCommand{
		use:   "set-pending-object-expiry BLOCKS",
		short: "Set how many blocks a data object may stay pending before it is removed. Requires the storage lead",
		long: `Set pendingObjectExpiry: a data object registered at height H and still not
accepted by a storage operator at the end of block H+BLOCKS is removed and its
voucher use released. Objects already registered keep their expiry height.
At 100 ms blocks 36000 blocks is an hour; an idle chain makes a block a second.`,
		example: `  satchel storage leader set-pending-object-expiry 100000 -y`,
		args:    cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			n, err := parsePositive("blocks", args[0])
			if err != nil {
				return tx{}, err
			}
			return storageLeadTx(chain.MsgSetPendingObjectExpiry{Blocks: n}, fmt.Sprintf("Expire data objects still pending %d blocks after registration", n),
				doneLine(fmt.Sprintf("pending object expiry: %d blocks", n), map[string]any{"pendingObjectExpiry": n})), nil
		},
	}.command(app)
}

func newStorageMembersPerBlockCmd(app *App) *cobra.Command {
	return txCommand{
		use:   "set-members-per-block N",
		short: "Set how many members one block may register. Requires the storage lead",
		long: `Set membersPerBlock: at most N create_member transactions succeed per block;
the rest are refused with a message to try again in the next block. It bounds
how fast free accounts can grow the directory (see docs/OPERATOR.md).`,
		example: `  satchel storage leader set-members-per-block 10 -y`,
		args:    cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			n, err := parsePositive("members per block", args[0])
			if err != nil {
				return tx{}, err
			}
			return storageLeadTx(chain.MsgSetMembersPerBlock{Limit: n}, fmt.Sprintf("Let one block register at most %d members", n),
				doneLine(fmt.Sprintf("members per block: %d", n), map[string]any{"membersPerBlock": n})), nil
		},
	}.command(app)
}
