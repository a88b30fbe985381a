package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() {
	registerGroup(newBagCmd)
	registerBagCommand(newBagShowCmd)
	registerBagCommand(newBagListCmd)
}

// bagCommands are the constructors of the subcommands of `satchel bag`.
// Files add theirs with registerBagCommand in an init function, so the group
// grows without editing this file.
var bagCommands []func(*App) *cobra.Command

func registerBagCommand(f func(*App) *cobra.Command) {
	bagCommands = append(bagCommands, f)
}

func newBagCmd(app *App) *cobra.Command {
	cmd := groupCmd("bag", "Show bags and the buckets that store and distribute them", "")
	for _, add := range bagCommands {
		cmd.AddCommand(add(app))
	}
	return cmd
}

func newBagShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show BAG",
		Short: "Show a bag: its owner, storage and distribution buckets, objects",
		Example: `  satchel bag show dynamic:channel:7
  satchel bag show static:council --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := chain.ParseBagID(args[0])
			if err != nil {
				return err
			}
			b, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.Bag, error) { return c.Bag(ctx, id) })
			if err != nil {
				return err
			}
			b.StorageBuckets, b.DistributionBuckets = nonNil(b.StorageBuckets), nonNil(b.DistributionBuckets)
			return app.Printer().Print(b, func(w io.Writer) error {
				return Table(w, []string{"BAG", b.ID.String()}, [][]string{
					{"owner", string(b.Owner)},
					{"storage buckets", joinIDs(b.StorageBuckets)},
					{"distribution buckets", joinIDs(b.DistributionBuckets)},
					{"objects", fmt.Sprintf("%d (%s)", b.ObjectsCount, formatBytes(b.ObjectsSize))},
					{"created at block", strconv.FormatInt(b.CreatedAt, 10)},
				})
			})
		},
	}
}

func newBagListCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List every bag with its buckets",
		Example: `  satchel bag list --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bags, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) ([]chain.Bag, error) { return c.Bags(ctx) })
			if err != nil {
				return err
			}
			bags = nonNil(bags)
			for i := range bags {
				bags[i].StorageBuckets, bags[i].DistributionBuckets = nonNil(bags[i].StorageBuckets), nonNil(bags[i].DistributionBuckets)
			}
			return app.Printer().Print(bags, func(w io.Writer) error {
				rows := make([][]string, len(bags))
				for i, b := range bags {
					rows[i] = []string{b.ID.String(), joinIDs(b.StorageBuckets), joinIDs(b.DistributionBuckets),
						strconv.FormatUint(b.ObjectsCount, 10), formatBytes(b.ObjectsSize)}
				}
				return Table(w, []string{"BAG", "STORAGE", "DISTRIBUTION", "OBJECTS", "SIZE"}, rows)
			})
		},
	}
}
