package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newFamilyCmd) }

func newFamilyCmd(app *App) *cobra.Command {
	return groupCmd("family", "Show distribution bucket families", "",
		newFamilyListCmd(app), newFamilyShowCmd(app))
}

func familyRegion(f chain.DistributionFamily) string {
	if f.Metadata == nil || f.Metadata.Region == "" {
		return "-"
	}
	return f.Metadata.Region
}

func familyBucketIDs(f chain.DistributionFamily) []chain.DistributionBucketID {
	ids := make([]chain.DistributionBucketID, len(f.Buckets))
	for i, b := range f.Buckets {
		ids[i] = b.ID
	}
	return ids
}

func newFamilyListCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List distribution bucket families with their buckets",
		Example: `  satchel family list --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fams, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) ([]chain.DistributionFamily, error) {
				return c.DistributionFamilies(ctx)
			})
			if err != nil {
				return err
			}
			fams = nonNil(fams)
			for i := range fams {
				fams[i].Buckets = nonNil(fams[i].Buckets)
			}
			return app.Printer().Print(fams, func(w io.Writer) error {
				rows := make([][]string, len(fams))
				for i, f := range fams {
					rows[i] = []string{f.ID.String(), familyRegion(f), joinIDs(familyBucketIDs(f))}
				}
				return Table(w, []string{"FAMILY", "REGION", "BUCKETS"}, rows)
			})
		},
	}
}

func newFamilyShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "show FAMILY",
		Short:   "Show a distribution bucket family: metadata and buckets",
		Example: `  satchel family show 0 --json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := chain.ParseFamilyID(args[0])
			if err != nil {
				return err
			}
			f, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.DistributionFamily, error) {
				return c.DistributionFamily(ctx, id)
			})
			if err != nil {
				return err
			}
			f.Buckets = nonNil(f.Buckets)
			return app.Printer().Print(f, func(w io.Writer) error {
				rows := [][]string{{"region", familyRegion(f)}}
				if f.Metadata != nil && f.Metadata.Description != "" {
					rows = append(rows, []string{"description", f.Metadata.Description})
				}
				rows = append(rows, []string{"buckets", joinIDs(familyBucketIDs(f))}, []string{"next index", strconv.FormatUint(f.NextIndex, 10)})
				if err := Table(w, []string{"FAMILY", f.ID.String()}, rows); err != nil {
					return err
				}
				if len(f.Buckets) == 0 {
					return nil
				}
				fmt.Fprintln(w)
				return distributionTable(w, f.Buckets)
			})
		},
	}
}
