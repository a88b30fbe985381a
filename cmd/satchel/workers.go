package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newWorkersCmd) }

func newWorkersCmd(app *App) *cobra.Command {
	return groupCmd("workers", "Working group workers: the lead adds and removes them, anyone lists them",
		`A worker of the storage or distribution working group is a worker ID bound to a
role account; operator commands are signed with that account's key. The group's
lead adds and removes workers.`,
		newWorkersAddCmd(app), newWorkersRemoveCmd(app), newWorkersListCmd(app))
}

func groupFlag(cmd *cobra.Command) *valueFlag[chain.Group] {
	f := newFlag("", chain.Group(""), chain.ParseGroup, "storage|distribution")
	cmd.Flags().VarP(f, "group", "g", "working group: storage or distribution (required)")
	requiredFlags(cmd, "group")
	return f
}

// parseRoleAccount reads an account address, or the account of a key file
// (so a lead can add a worker from the worker's public key file or, on one
// machine, its key file).
func parseRoleAccount(s string) (chain.Account, error) {
	if a, err := chain.ParseAccount(s); err == nil {
		return a, nil
	}
	if _, err := os.Stat(s); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%q: want an account (64 hex characters, an ed25519 public key) or a key file", s)
	}
	k, err := loadKey(s)
	if err != nil {
		return "", err
	}
	return k.Account(), nil
}

func newWorkersAddCmd(app *App) *cobra.Command {
	var group *valueFlag[chain.Group]
	account := newFlag("", chain.Account(""), parseRoleAccount, "account")
	return txCommand{
		use:   "add -g storage|distribution -a ACCOUNT",
		short: "Add a worker with a role account to a working group. Requires the group's lead",
		long: `Add a worker to a working group; the new worker ID is printed. -a is the
worker's role account (64 hex characters) or a key file holding it. Signed by
the group's lead key (default: the one under the home, or -k/--key).`,
		example: `  satchel workers add -g distribution -a 5f2c...e1 -y
  satchel workers add -g storage -a worker.key -y`,
		flags: func(cmd *cobra.Command) {
			group = groupFlag(cmd)
			cmd.Flags().VarP(account, "account", "a", "the worker's role account, or a key file holding it (required)")
			requiredFlags(cmd, "account")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgAddWorker{Group: group.value, Account: account.value}
			return tx{role: leadRole(m.Group), msg: m,
				action: fmt.Sprintf("Add a %s worker with role account %s", m.Group, m.Account),
				done: func(ev []chain.Event) (string, map[string]any) {
					w, ok := chain.FindEvent[chain.WorkerAdded](ev)
					if !ok {
						return "added a worker (no WorkerAdded event)", nil
					}
					return fmt.Sprintf("added %s worker %d (role account %s)", w.Group, w.Worker, w.Account),
						map[string]any{"group": w.Group, "worker": w.Worker, "account": w.Account}
				}}, nil
		},
	}.command(app)
}

func newWorkersRemoveCmd(app *App) *cobra.Command {
	var group *valueFlag[chain.Group]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:   "remove -g storage|distribution -w WORKER",
		short: "Remove a worker from a working group. Requires the group's lead",
		long: `Remove a worker from a working group. A worker that operates or is invited to a
bucket cannot be removed: remove it from its buckets first.`,
		example: `  satchel workers remove -g storage -w 3 -y`,
		flags: func(cmd *cobra.Command) {
			group, worker = groupFlag(cmd), workerFlag(cmd, "the worker to remove (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgRemoveWorker{Group: group.value, Worker: worker.value}
			return tx{role: leadRole(m.Group), msg: m,
				action: fmt.Sprintf("Remove %s worker %d", m.Group, m.Worker),
				done: doneLine(fmt.Sprintf("removed %s worker %d", m.Group, m.Worker),
					map[string]any{"group": m.Group, "worker": m.Worker})}, nil
		},
	}.command(app)
}

func newWorkersListCmd(app *App) *cobra.Command {
	var group *valueFlag[chain.Group]
	cmd := &cobra.Command{
		Use:     "list -g storage|distribution",
		Short:   "List the workers of a working group and their role accounts",
		Example: `  satchel workers list -g storage --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) ([]chain.Worker, error) {
				return c.Workers(ctx, group.value)
			})
			if err != nil {
				return err
			}
			ws = nonNil(ws)
			return app.Printer().Print(ws, func(w io.Writer) error {
				if len(ws) == 0 {
					_, err := fmt.Fprintf(w, "no %s workers\n", group.value)
					return err
				}
				rows := make([][]string, len(ws))
				for i, x := range ws {
					rows[i] = []string{x.ID.String(), string(x.Account)}
				}
				return Table(w, []string{"WORKER", "ROLE ACCOUNT"}, rows)
			})
		},
	}
	group = groupFlag(cmd)
	return cmd
}
