package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newMemberCmd) }

func newMemberCmd(app *App) *cobra.Command {
	return groupCmd("member", "Register members: the accounts that own channels and bags", "",
		newMemberCreateCmd(app), newMemberInviteCmd(app), newMemberShowCmd(app)) // member_invite.go
}

func newMemberCreateCmd(app *App) *cobra.Command {
	var handle string
	return txCommand{
		use:   "create [--handle NAME]",
		short: "Register the signing account as a member",
		long: `Register the signing account as a member, controlled by that account; this also
creates the member's bag dynamic:member:<id>, placed by the Member dynamic bag
policy. Without -k/--key or key in the config, the account key under the home
is used, and created when it does not exist yet; -k names a key that
exists already. Prints the member ID.`,
		example: `  satchel member create --handle alice -y     # makes HOME/keys/account.key if missing
  satchel member create -k keys/alice.key     # an existing account key`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&handle, "handle", "", "the member's handle (optional)")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			action := "Register a member"
			if handle != "" {
				action += fmt.Sprintf(" with handle %q", handle)
			}
			return tx{role: accountRole, createKey: true, msg: chain.MsgCreateMember{Handle: handle}, action: action,
				done: func(ev []chain.Event) (string, map[string]any) {
					c, ok := chain.FindEvent[chain.MemberCreated](ev)
					if !ok {
						return "registered a member (no MemberCreated event)", nil
					}
					fields := map[string]any{"member": c.Member, "controller": c.Controller, "bag": chain.MemberBag(c.Member)}
					line := fmt.Sprintf("created member %d (bag %s)", c.Member, chain.MemberBag(c.Member))
					if b, ok := chain.FindEvent[chain.BagCreated](ev); ok {
						fields["storageBuckets"], fields["distributionBuckets"] = nonNil(b.StorageBuckets), nonNil(b.DistributionBuckets)
					}
					return line, fields
				}}, nil
		},
	}.command(app)
}
