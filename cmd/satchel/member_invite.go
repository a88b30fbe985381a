package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

// Member creation by invitation (app version 4): a member's controller
// spends one of the member's invitations to register another account's
// member; the storage lead invites without limit, hands invitations out
// and may close open registration (docs/OPERATOR.md, "Closing open
// registration").

func newMemberInviteCmd(app *App) *cobra.Command {
	var handle string
	member := newFlag("", chain.MemberID(0), parseMemberID, "memberId")
	return txCommand{
		use:   "invite ACCOUNT [--member ID] [--handle NAME]",
		short: "Register another account's member, spending one of your member's invitations",
		long: `Register a member controlled by ACCOUNT (an account address, or a key or public
key file), invited by member --member: signed by that member's controller
account, it spends one of the member's invitations, and the new member's
record names its inviter. This also creates the new member's bag
dynamic:member:<id>. Without --member the storage lead invites, without limit,
signed like leader commands: with --key, else the config's key, else the
storage lead key in HOME/keys (on a devnet, whose config names the member's
key, pass --key HOME/keys/storage-lead.key). The storage lead gives members
invitations with ` + "`satchel storage leader set-member-invites`" + `.
Prints the new member's ID.`,
		example: `  satchel member invite 5f2c...e1 --member 0 --handle bob -y
  satchel member invite keys/bob.key --member 0 -k keys/alice.key
  satchel member invite 5f2c...e1 -y -k keys/storage-lead.key  # as the storage lead`,
		args: cobra.ExactArgs(1),
		flags: func(cmd *cobra.Command) {
			cmd.Flags().Var(member, "member", "ID of the inviting member, whose controller signs (default: the storage lead invites)")
			cmd.Flags().StringVar(&handle, "handle", "", "the new member's handle (optional)")
		},
		build: func(cmd *cobra.Command, args []string) (tx, error) {
			acct, err := parseRoleAccount(args[0])
			if err != nil {
				return tx{}, err
			}
			m := chain.MsgInviteMember{Controller: acct, Handle: handle}
			role, action := storageLeadRole, fmt.Sprintf("Invite account %s as a member (storage lead)", acct)
			if cmd.Flags().Changed("member") {
				id := member.value
				m.Member, role = &id, accountRole
				action = fmt.Sprintf("Invite account %s as a member, spending one of member %d's invitations", acct, id)
			}
			return tx{role: role, msg: m, action: action, done: invitedDone}, nil
		},
	}.command(app)
}

// invitedDone reports the invited member, its bag and the invitations
// its inviter has left.
func invitedDone(ev []chain.Event) (string, map[string]any) {
	c, ok := chain.FindEvent[chain.MemberCreated](ev)
	if !ok {
		return "invited a member (no MemberCreated event)", nil
	}
	fields := map[string]any{"member": c.Member, "controller": c.Controller, "bag": chain.MemberBag(c.Member)}
	line := fmt.Sprintf("created member %d (bag %s)", c.Member, chain.MemberBag(c.Member))
	switch {
	case c.InvitedBy != nil:
		fields["invitedBy"] = *c.InvitedBy
		line += fmt.Sprintf(", invited by member %d", *c.InvitedBy)
	case c.InvitedByLead:
		line += ", invited by the storage lead"
	}
	if c.InvitedByLead {
		fields["invitedByLead"] = true
	}
	if u, ok := chain.FindEvent[chain.MemberInvitesUpdated](ev); ok {
		fields["invitesLeft"] = u.Invites
		line += fmt.Sprintf("; member %d has %s left", u.Member, plural(u.Invites, "invitation"))
	}
	return line, fields
}

func plural(n uint64, what string) string { return chain.Plural(int(min(n, 1<<31)), what) }

func newMemberShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a member: its controller account, handle, invitations and inviter",
		Example: `  satchel member show 0
  satchel member show 3 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			m, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.Member, error) { return c.Member(ctx, id) })
			if err != nil {
				return err
			}
			invited := "no (open registration)"
			switch {
			case m.InvitedBy != nil && m.InvitedByLead:
				invited = fmt.Sprintf("by the storage lead, as member %d", *m.InvitedBy)
			case m.InvitedBy != nil:
				invited = fmt.Sprintf("by member %d", *m.InvitedBy)
			case m.InvitedByLead:
				invited = "by the storage lead"
			}
			return app.Printer().Print(m, func(w io.Writer) error {
				return Table(w, []string{"MEMBER", strconv.FormatUint(uint64(m.ID), 10)}, [][]string{
					{"controller", string(m.Controller)},
					{"handle", m.Handle},
					{"bag", chain.MemberBag(m.ID).String()},
					{"invitations left", strconv.FormatUint(m.Invites, 10)},
					{"invited", invited},
				})
			})
		},
	}
}

// The storage lead's membership commands (storage leader group).

func newStorageSetMemberInvitesCmd(app *App) *cobra.Command {
	return txCommand{
		use:   "set-member-invites MEMBER N",
		short: "Set how many members a member may invite. Requires the storage lead",
		long: `Set member MEMBER's invitations left to N: each ` + "`satchel member invite`" + ` by its
controller spends one. 0 takes them away, say from a member whose invitees
spam (a member's record names its inviter: ` + "`satchel member show`" + `).`,
		example: `  satchel storage leader set-member-invites 0 5 -y`,
		args:    cobra.ExactArgs(2),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			id, err := parseMemberID(args[0])
			if err != nil {
				return tx{}, err
			}
			n, err := parseCount(args[1])
			if err != nil {
				return tx{}, fmt.Errorf("invitations %w", err)
			}
			return storageLeadTx(chain.MsgSetMemberInvites{Member: id, Invites: n}, fmt.Sprintf("Let member %d invite %s", id, plural(n, "member")),
				doneLine(fmt.Sprintf("member %d: %s left", id, plural(n, "invitation")), map[string]any{"member": id, "invites": n})), nil
		},
	}.command(app)
}

func newStorageOpenMembersPerBlockCmd(app *App) *cobra.Command {
	return txCommand{
		use:   "set-open-members-per-block N",
		short: "Set how many members one block may register openly (0 closes open registration). Requires the storage lead",
		long: `Set openMembersPerBlock: at most N ` + "`satchel member create`" + ` (open
registrations) succeed per block. 0 closes open registration: new members then
join only by invitation (` + "`satchel member invite`" + `), which has its own quota,
membersPerBlock, that open registrations never use.`,
		example: `  satchel storage leader set-open-members-per-block 0 -y`,
		args:    cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			n, err := parseCount(args[0])
			if err != nil {
				return tx{}, fmt.Errorf("open members per block %w", err)
			}
			action := fmt.Sprintf("Let one block register at most %s openly", plural(n, "member"))
			if n == 0 {
				action = "Close open registration: members join by invitation only"
			}
			return storageLeadTx(chain.MsgSetOpenMembersPerBlock{Limit: n}, action,
				doneLine(fmt.Sprintf("open members per block: %d", n), map[string]any{"openMembersPerBlock": n})), nil
		},
	}.command(app)
}

func newStorageInitialInvitesCmd(app *App) *cobra.Command {
	return txCommand{
		use:     "set-initial-invites N",
		short:   "Set how many invitations a new member starts with. Requires the storage lead",
		example: `  satchel storage leader set-initial-invites 2 -y`,
		args:    cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			n, err := parseCount(args[0])
			if err != nil {
				return tx{}, fmt.Errorf("initial invites %w", err)
			}
			return storageLeadTx(chain.MsgSetInitialInvites{Invites: n}, fmt.Sprintf("Give each new member %s", plural(n, "invitation")),
				doneLine(fmt.Sprintf("initial invites: %d", n), map[string]any{"initialInvites": n})), nil
		},
	}.command(app)
}
