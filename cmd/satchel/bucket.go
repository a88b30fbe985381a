package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newBucketCmd) }

func newBucketCmd(app *App) *cobra.Command {
	return groupCmd("bucket", "Show storage and distribution buckets", "",
		newBucketListCmd(app), newBucketShowCmd(app))
}

// bucketList is the --json shape of `bucket list`: the kinds asked for.
type bucketList struct {
	Storage      []chain.StorageBucket      `json:"storage,omitempty"`
	Distribution []chain.DistributionBucket `json:"distribution,omitempty"`
}

func newBucketListCmd(app *App) *cobra.Command {
	var storageOnly, distOnly bool
	cmd := &cobra.Command{
		Use:   "list [--storage | --distribution]",
		Short: "List storage buckets and distribution buckets",
		Long: `List buckets: storage buckets (named by number) and distribution buckets (named
{familyId}:{bucketIndex}). --storage or --distribution lists one kind; --json
then prints {"storage": [...]} or {"distribution": [...]}.`,
		Example: `  satchel bucket list
  satchel bucket list --distribution --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if storageOnly && distOnly {
				return fmt.Errorf("--storage and --distribution exclude each other; give neither to list both")
			}
			list, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (bucketList, error) {
				var l bucketList
				if !distOnly {
					sb, err := c.StorageBuckets(ctx)
					if err != nil {
						return l, err
					}
					l.Storage = nonNil(sb)
				}
				if !storageOnly {
					fams, err := c.DistributionFamilies(ctx)
					if err != nil {
						return l, err
					}
					l.Distribution = []chain.DistributionBucket{}
					for _, f := range fams {
						l.Distribution = append(l.Distribution, f.Buckets...)
					}
				}
				return l, nil
			})
			if err != nil {
				return err
			}
			type both struct {
				Storage      []chain.StorageBucket      `json:"storage"`
				Distribution []chain.DistributionBucket `json:"distribution"`
			}
			var v any = list
			if !storageOnly && !distOnly {
				v = both(list) // keep both keys, even when empty
			}
			return app.Printer().Print(v, func(w io.Writer) error {
				if !distOnly {
					if err := storageTable(w, list.Storage); err != nil {
						return err
					}
				}
				if !storageOnly {
					if !distOnly {
						fmt.Fprintln(w)
					}
					return distributionTable(w, list.Distribution)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&storageOnly, "storage", false, "list storage buckets only")
	cmd.Flags().BoolVar(&distOnly, "distribution", false, "list distribution buckets only")
	return cmd
}

func storageOperator(b chain.StorageBucket) string {
	if b.Operator == nil {
		return string(b.OperatorStatus)
	}
	return fmt.Sprintf("%s %d", b.OperatorStatus, *b.Operator)
}

func storageTable(w io.Writer, bs []chain.StorageBucket) error {
	rows := make([][]string, len(bs))
	for i, b := range bs {
		v := b.Voucher
		rows[i] = []string{b.ID.String(), yesNo(b.AcceptingNewBags), storageOperator(b),
			fmt.Sprintf("%d/%d", v.ObjectsUsed, v.ObjectsLimit),
			fmt.Sprintf("%s/%s", formatBytes(v.SizeUsed), formatBytes(v.SizeLimit)),
			strconv.FormatUint(b.BagsCount, 10)}
	}
	return Table(w, []string{"STORAGE BUCKET", "ACCEPTING", "OPERATOR", "OBJECTS", "SIZE", "BAGS"}, rows)
}

func distributionOperators(b chain.DistributionBucket) string {
	ids := make([]chain.WorkerID, len(b.Operators))
	for i, o := range b.Operators {
		ids[i] = o.Worker
	}
	return joinIDs(ids)
}

func distributionTable(w io.Writer, bs []chain.DistributionBucket) error {
	rows := make([][]string, len(bs))
	for i, b := range bs {
		rows[i] = []string{b.ID.String(), yesNo(b.AcceptingNewBags), onOff(b.Distributing),
			distributionOperators(b), joinIDs(b.Invitations), strconv.FormatUint(b.BagsCount, 10)}
	}
	return Table(w, []string{"DISTRIBUTION BUCKET", "ACCEPTING", "DISTRIBUTING", "OPERATORS", "INVITED", "BAGS"}, rows)
}

func newBucketShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a storage bucket (ID 3) or a distribution bucket (ID 0:1)",
		Long: `Show one bucket with its operators, invitations and bags. A plain number names a
storage bucket; {familyId}:{bucketIndex} names a distribution bucket.`,
		Example: `  satchel bucket show 3
  satchel bucket show 0:1 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.Contains(args[0], ":") {
				id, err := chain.ParseDistributionBucketID(args[0])
				if err != nil {
					return err
				}
				b, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.DistributionBucket, error) {
					return c.DistributionBucket(ctx, id)
				})
				if err != nil {
					return err
				}
				b.Operators, b.Invitations, b.Bags = nonNil(b.Operators), nonNil(b.Invitations), nonNil(b.Bags)
				return app.Printer().Print(b, func(w io.Writer) error {
					rows := [][]string{
						{"accepting new bags", yesNo(b.AcceptingNewBags)},
						{"distributing", onOff(b.Distributing)},
						{"operators", distributionOperators(b)},
						{"invited", joinIDs(b.Invitations)},
						{"bags", joinIDs(b.Bags)},
					}
					for _, o := range b.Operators {
						if o.Metadata != nil && o.Metadata.Endpoint != "" {
							rows = append(rows, []string{fmt.Sprintf("worker %d endpoint", o.Worker), o.Metadata.Endpoint})
						}
					}
					return Table(w, []string{"DISTRIBUTION BUCKET", b.ID.String()}, rows)
				})
			}
			id, err := chain.ParseStorageBucketID(args[0])
			if err != nil {
				return fmt.Errorf("%w, or a distribution bucket {familyId}:{bucketIndex} such as 0:1", err)
			}
			b, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.StorageBucket, error) {
				return c.StorageBucket(ctx, id)
			})
			if err != nil {
				return err
			}
			b.Bags = nonNil(b.Bags)
			return app.Printer().Print(b, func(w io.Writer) error {
				v := b.Voucher
				rows := [][]string{
					{"accepting new bags", yesNo(b.AcceptingNewBags)},
					{"operator", storageOperator(b)},
					{"objects", fmt.Sprintf("%d of %d", v.ObjectsUsed, v.ObjectsLimit)},
					{"size", fmt.Sprintf("%s of %s", formatBytes(v.SizeUsed), formatBytes(v.SizeLimit))},
					{"bags", joinIDs(b.Bags)},
				}
				if b.Transactor != "" {
					rows = append(rows, []string{"transactor", string(b.Transactor)})
				}
				if md := b.Metadata; md != nil {
					rows = append(rows, []string{"peer ID", md.PeerID}, []string{"addresses", joinStrings(md.Multiaddrs)})
				}
				return Table(w, []string{"STORAGE BUCKET", b.ID.String()}, rows)
			})
		},
	}
}
