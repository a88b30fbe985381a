package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newParamsCmd) }

func newParamsCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "params",
		Short: "Show the leads, limits, dynamic bag policies and upload switch",
		Example: `  satchel params
  satchel params --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.Params, error) { return c.Params(ctx) })
			if err != nil {
				return err
			}
			p.Policies, p.Blacklist = nonNil(p.Policies), nonNil(p.Blacklist)
			return app.Printer().Print(p, func(w io.Writer) error {
				l := p.Limits
				rows := [][]string{
					{"storage lead", string(p.StorageLead)},
					{"distribution lead", string(p.DistributionLead)},
					{"storage buckets per bag", strconv.FormatUint(l.StorageBucketsPerBag, 10)},
					{"distribution buckets per bag", strconv.FormatUint(l.DistributionBucketsPerBag, 10)},
					{"voucher max", fmt.Sprintf("%d objects, %s", l.VoucherMaxObjects, formatBytes(l.VoucherMaxSize))},
					{"max data object size", formatBytes(l.MaxDataObjectSize)},
					{"pending object expiry", fmt.Sprintf("%d blocks", l.PendingObjectExpiry)},
					{"members per block", fmt.Sprintf("%d invited, %d open", l.MembersPerBlock, l.OpenMembers())},
					{"initial invitations", strconv.FormatUint(l.InitialInvites, 10)},
					{"uploading blocked", onOff(p.UploadingBlocked)},
					{"blacklist", chain.Plural(len(p.Blacklist), "content ID")},
				}
				pols := slices.Clone(p.Policies)
				slices.SortFunc(pols, func(a, b chain.DynamicBagPolicy) int { return strings.Compare(string(a.Type), string(b.Type)) })
				for _, pol := range pols {
					rows = append(rows, []string{string(pol.Type) + " bag policy",
						fmt.Sprintf("%s; %s", chain.Plural(int(pol.StorageBuckets), "storage bucket"), describePolicy(pol.Families))})
				}
				return Table(w, []string{"CHAIN", p.ChainID}, rows)
			})
		},
	}
}
