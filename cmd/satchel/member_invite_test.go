package main

import (
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// TestMemberInvite drives invitations through the CLI and a real chain: a
// member with no invitations is refused, the lead gives it one, its
// invitation registers a member naming it, the lead closes open
// registration and still invites.
func TestMemberInvite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain node")
	}
	tc := startTestChain(t)
	alice, _ := newKeyFile(t, t.TempDir(), "alice.key")
	var m txOut
	tc.okJSON(&m, "member", "create", "--handle", "alice", "-k", alice, "-y")
	if m.Member == nil {
		t.Fatalf("member create: %+v", m)
	}
	inviter := itoa(int(*m.Member))
	bob := mustGenerateKey(t).Account()
	tc.fails([]string{"member " + inviter + " has no invitations left", "set-member-invites"},
		"member", "invite", string(bob), "--member", inviter, "-k", alice, "-y")

	var set map[string]any
	tc.okJSON(&set, "storage", "leader", "set-member-invites", inviter, "1", "-y")
	type invited struct {
		txOut
		InvitedBy     *uint64 `json:"invitedBy"`
		InvitedByLead bool    `json:"invitedByLead"`
		InvitesLeft   *uint64 `json:"invitesLeft"`
		Controller    chain.Account
	}
	var inv invited
	tc.okJSON(&inv, "member", "invite", string(bob), "--member", inviter, "--handle", "bob", "-k", alice, "-y")
	if inv.Member == nil || inv.InvitedBy == nil || itoa(int(*inv.InvitedBy)) != inviter || inv.InvitesLeft == nil || *inv.InvitesLeft != 0 || inv.Controller != bob {
		t.Fatalf("member invite: %+v", inv)
	}
	var shown chain.Member
	tc.okJSON(&shown, "member", "show", itoa(int(*inv.Member)))
	if shown.Controller != bob || shown.Handle != "bob" || shown.InvitedBy == nil || itoa(int(*shown.InvitedBy)) != inviter || shown.Invites != 0 {
		t.Fatalf("member show: %+v", shown)
	}
	tc.fails([]string{"no invitations left"}, "member", "invite", string(mustGenerateKey(t).Account()), "--member", inviter, "-k", alice, "-y")

	tc.ok("storage", "leader", "set-open-members-per-block", "0", "-y")
	carol, _ := newKeyFile(t, t.TempDir(), "carol.key")
	tc.fails([]string{"open registration is closed", "satchel member invite"}, "member", "create", "-k", carol, "-y")
	var byLead invited
	tc.okJSON(&byLead, "member", "invite", carol, "-y") // a key file names the account; the lead signs
	if inv = byLead; inv.Member == nil || inv.InvitedBy != nil || !inv.InvitedByLead {
		t.Fatalf("lead's invitation: %+v", inv)
	}
	if out := tc.ok("member", "show", itoa(int(*inv.Member))); !strings.Contains(out, "by the storage lead") {
		t.Fatalf("member show of the lead's invitee:\n%s", out)
	}
}
