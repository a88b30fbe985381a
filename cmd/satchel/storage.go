package main

// `satchel storage`: the storage working group's command, which the leader,
// operator and server subcommands (storage_*.go) register into.

import "github.com/spf13/cobra"

func init() {
	registerGroup(newStorageCmd)
}

// storageCommands are the constructors of the subcommands of `satchel
// storage`. Files add theirs with registerStorageCommand in an init
// function, so the group grows without editing this file.
var storageCommands []func(*App) *cobra.Command

func registerStorageCommand(f func(*App) *cobra.Command) {
	storageCommands = append(storageCommands, f)
}

func newStorageCmd(app *App) *cobra.Command {
	cmd := groupCmd("storage", "Storage working group: the lead's and the operators' on-chain duties",
		`Commands of the storage working group. "leader" commands manage storage
buckets, bags, limits and policies and need the storage lead's key; "operator"
commands are run by storage workers with their role account key.

Storage buckets are named by their number with -i/--bucketId, workers with
-w/--workerId and bags with -b/--bagId. Every transaction is described and
confirmed first; -y skips the confirmation (required in scripts).`)
	for _, add := range storageCommands {
		cmd.AddCommand(add(app))
	}
	return cmd
}
