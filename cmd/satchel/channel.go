package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newChannelCmd) }

func newChannelCmd(app *App) *cobra.Command {
	return groupCmd("channel", "Create channels: each channel's bag holds its data objects", "",
		newChannelCreateCmd(app))
}

func newChannelCreateCmd(app *App) *cobra.Command {
	var title string
	member := newFlag("", chain.MemberID(0), parseMemberID, "memberId")
	return txCommand{
		use:   "create --member ID [--title TITLE]",
		short: "Create a channel of a member, and its bag dynamic:channel:<id>",
		long: `Create a channel of a member, signed by the member's controller account. This
creates the channel's bag dynamic:channel:<id>, placed in storage and
distribution buckets by the Channel dynamic bag policies; when too few buckets
qualify, nothing is created and the error says which. Prints the channel ID
and the bag's buckets.`,
		example: `  satchel channel create --member 0 --title "Cooking" -y`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().Var(member, "member", "ID of the member that owns the channel (required)")
			cmd.Flags().StringVar(&title, "title", "", "the channel's title (optional)")
			requiredFlags(cmd, "member")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgCreateChannel{Member: member.value, Title: title}
			return tx{role: accountRole, msg: m,
				action: fmt.Sprintf("Create a channel of member %d", m.Member),
				done: func(ev []chain.Event) (string, map[string]any) {
					c, ok := chain.FindEvent[chain.ChannelCreated](ev)
					if !ok {
						return "created a channel (no ChannelCreated event)", nil
					}
					fields := map[string]any{"channel": c.Channel, "member": c.Member, "bag": c.Bag}
					line := fmt.Sprintf("created channel %d (bag %s)", c.Channel, c.Bag)
					if b, ok := chain.FindEvent[chain.BagCreated](ev); ok {
						fields["storageBuckets"], fields["distributionBuckets"] = nonNil(b.StorageBuckets), nonNil(b.DistributionBuckets)
						line += fmt.Sprintf("\n  storage buckets: %s\n  distribution buckets: %s", joinIDs(b.StorageBuckets), joinIDs(b.DistributionBuckets))
					}
					return line, fields
				}}, nil
		},
	}.command(app)
}

func parseMemberID(s string) (chain.MemberID, error) {
	n, err := parseCount(s)
	if err != nil {
		return 0, fmt.Errorf("member ID %w", err)
	}
	return chain.MemberID(n), nil
}
