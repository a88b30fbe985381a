package state

import (
	"errors"
	"fmt"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func (h *harness) memberRecord(id chain.MemberID) chain.Member {
	h.t.Helper()
	return queryAs[chain.Member](h.t, h.m, chain.QueryMember, id)
}

// invite returns alice's invitation of k's account, spending one of
// member m's invitations.
func invite(m chain.MemberID, k chain.Key) chain.MsgInviteMember {
	return chain.MsgInviteMember{Member: &m, Controller: k.Account(), Handle: "invited"}
}

// wantCode requires result r to have failed with want.
func wantCode(t *testing.T, r chain.TxResult, want *chain.Error) {
	t.Helper()
	if err := chain.ErrorFromCode(r.Code, r.Log); !errors.Is(err, want) {
		t.Fatalf("result code %d (%s); want %d (%s)", r.Code, r.Log, want.Code, want.Msg)
	}
}

// An invitation registers the invited account's member, naming its
// inviter, and spends one; with none left, CheckTx refuses another, so
// does a block, and a proposal with more than the inviter has.
func TestInviteMemberSpendsInvitation(t *testing.T) {
	h := newHarness(t)
	mem := h.member(alice)
	h.refused(alice, invite(mem, bob), chain.ErrNoInvites) // 0 to start with
	h.do(storageLead, chain.MsgSetMemberInvites{Member: mem, Invites: 1})
	if got := h.memberRecord(mem).Invites; got != 1 {
		t.Fatalf("invites after set_member_invites = %d; want 1", got)
	}

	// The mempool holds one invitation of alice's, not two.
	first := h.admitted(alice, invite(mem, bob))
	h.refused(alice, invite(mem, mallory), chain.ErrNoInvites)
	second := h.sign(alice, invite(mem, mallory))
	if err := h.m.CheckProposal([][]byte{first, second}); !errors.Is(err, chain.ErrNoInvites) {
		t.Fatalf("CheckProposal(two invitations, one left) = %v; want %v", err, chain.ErrNoInvites.Msg)
	}
	h.nonces[alice.Account()]--
	r := h.block(first)[0]
	if r.Code != chain.CodeOK {
		t.Fatalf("invite_member: %s", r.Log)
	}
	c := event[chain.MemberCreated](t, r)
	got := h.memberRecord(c.Member)
	if got.Controller != bob.Account() || got.InvitedBy == nil || *got.InvitedBy != mem || got.InvitedByLead || got.Invites != 0 || got.Handle != "invited" {
		t.Fatalf("invited member = %+v; want bob's, invited by %d, no invitations", got, mem)
	}
	if n := event[chain.MemberInvitesUpdated](t, r).Invites; n != 0 || h.memberRecord(mem).Invites != 0 {
		t.Fatalf("inviter's invitations after spending its one: event %d, record %d; want 0", n, h.memberRecord(mem).Invites)
	}
	if h.bag(chain.MemberBag(c.Member)).Owner != bob.Account() {
		t.Fatal("invited member's bag is not owned by its controller")
	}
	// The invited member's controller has its standing at once.
	h.admitted(bob, chain.MsgCreateChannel{Member: c.Member})
	h.nonces[bob.Account()]--
	h.block()

	h.refused(alice, invite(mem, mallory), chain.ErrNoInvites)
	h.fail(alice, invite(mem, mallory), chain.ErrNoInvites)
	// Another member's controller may not spend alice's.
	h.do(storageLead, chain.MsgSetMemberInvites{Member: mem, Invites: 1})
	h.refused(bob, invite(mem, mallory), chain.ErrUnauthorized)
	h.fail(bob, invite(mem, mallory), chain.ErrUnauthorized)
	// Nor may a non-lead invite naming no member.
	h.refused(alice, chain.MsgInviteMember{Controller: mallory.Account()}, chain.ErrUnauthorized)
}

// The storage lead invites without limit and spends nothing; new members
// start with Limits.InitialInvites, which the lead sets.
func TestInviteMemberLeadUnlimited(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MembersPerBlock = 3 })
	var txs [][]byte
	for i := range 3 {
		txs = append(txs, h.admitted(storageLead, chain.MsgInviteMember{Controller: testKey(fmt.Sprint("guest", i)).Account()}))
	}
	// The per-block quota bounds the lead too.
	h.refused(storageLead, chain.MsgInviteMember{Controller: testKey("guest3").Account()}, chain.ErrMembersPerBlock)
	for i, r := range h.block(txs...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("lead's invitation %d: %s", i, r.Log)
		}
		m := h.memberRecord(event[chain.MemberCreated](t, r).Member)
		if !m.InvitedByLead || m.InvitedBy != nil {
			t.Fatalf("lead-invited member %+v; want invitedByLead, no inviting member", m)
		}
	}
	h.do(storageLead, chain.MsgSetInitialInvites{Invites: 2})
	if got := h.params().Limits.InitialInvites; got != 2 {
		t.Fatalf("initialInvites = %d; want 2", got)
	}
	lm := event[chain.MemberCreated](t, h.do(storageLead, chain.MsgCreateMember{})).Member
	if got := h.memberRecord(lm).Invites; got != 2 {
		t.Fatalf("a new member has %d invitations; want initialInvites 2", got)
	}
	// The lead naming its own member spends none of that member's.
	h.do(storageLead, invite(lm, testKey("guest4")))
	h.do(storageLead, invite(lm, testKey("guest5")))
	h.do(storageLead, invite(lm, testKey("guest6")))
	if got := h.memberRecord(lm).Invites; got != 2 {
		t.Fatalf("the lead's member has %d invitations after the lead invited thrice; want 2", got)
	}
}

// With open registration closed (openMembersPerBlock 0), create_member is
// refused at CheckTx and in a block, as not allowed; invitations work.
func TestOpenRegistrationClosed(t *testing.T) {
	h := newHarness(t)
	mem := h.member(alice)
	h.do(storageLead, chain.MsgSetMemberInvites{Member: mem, Invites: 1})
	h.do(storageLead, chain.MsgSetOpenMembersPerBlock{Limit: 0})
	if l := h.params().Limits; l.OpenMembersPerBlock == nil || *l.OpenMembersPerBlock != 0 || l.OpenMembers() != 0 {
		t.Fatalf("limits after closing: %+v", l)
	}
	h.refused(mallory, chain.MsgCreateMember{}, chain.ErrUnauthorized)
	h.fail(mallory, chain.MsgCreateMember{}, chain.ErrUnauthorized)
	h.do(alice, invite(mem, bob))
	h.do(storageLead, chain.MsgInviteMember{Controller: mallory.Account()})
	// Open again: one a block.
	h.do(storageLead, chain.MsgSetOpenMembersPerBlock{Limit: 1})
	h.admitted(testKey("open0"), chain.MsgCreateMember{})
	h.refused(testKey("open1"), chain.MsgCreateMember{}, chain.ErrMembersPerBlock)
}

// A flood of open registrations fills the open quota, never the invited
// one: the mempool, the proposer, the validators and the block all still
// take an invited member.
func TestInvitedMemberNotCrowdedOut(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MembersPerBlock = 2 })
	mem := h.member(alice)
	h.do(storageLead, chain.MsgSetMemberInvites{Member: mem, Invites: 5})
	var flood [][]byte
	for i := range 2 {
		flood = append(flood, h.admitted(testKey(fmt.Sprint("flood", i)), chain.MsgCreateMember{}))
	}
	h.refused(testKey("flood2"), chain.MsgCreateMember{}, chain.ErrMembersPerBlock)
	inv := h.admitted(alice, invite(mem, bob))

	// A proposer's own extra open creation goes; the invitation stays.
	extra := h.sign(testKey("flood2"), chain.MsgCreateMember{})
	in := append(append(append([][]byte{}, flood...), extra), inv)
	out := h.m.ProposalTxs(in)
	if len(out) != 3 || string(out[2]) != string(inv) {
		t.Fatalf("ProposalTxs kept %d of %d (invitation last: %v); want the 2 open and the invitation", len(out), len(in), len(out) > 0 && string(out[len(out)-1]) == string(inv))
	}
	if err := h.m.CheckProposal(out); err != nil {
		t.Fatalf("CheckProposal(open quota full + invitation) = %v", err)
	}
	if err := h.m.CheckProposal(in); !errors.Is(err, chain.ErrMembersPerBlock) {
		t.Fatalf("CheckProposal(over the open quota) = %v; want %v", err, chain.ErrMembersPerBlock.Msg)
	}
	// A block that holds them all anyway (replayed, not processed):
	// the third open one fails, the invitation succeeds.
	rs := h.block(in...)
	for i, want := range []uint32{chain.CodeOK, chain.CodeOK, chain.CodeMembersPerBlock, chain.CodeOK} {
		if rs[i].Code != want {
			t.Fatalf("tx %d: code %d (%s); want %d", i, rs[i].Code, rs[i].Log, want)
		}
	}
	if m := h.memberRecord(event[chain.MemberCreated](t, rs[3]).Member); m.Controller != bob.Account() {
		t.Fatalf("invited member %+v; want bob's", m)
	}
}

// A version 3 chain has no invitations: its messages are refused as
// unknown, using no nonce, as the releases before answered. The upgrade to
// 4 keeps its members, with no invitations, and brings them.
func TestInvitationsComeWithVersion4(t *testing.T) {
	h := newHarness(t, atVersion(VersionObjectIndex), func(g *chain.Genesis) { g.Limits.InitialInvites = 3 })
	if got := h.params().Limits.InitialInvites; got != 0 {
		t.Fatalf("a version 3 genesis kept initialInvites %d", got)
	}
	mem := h.member(alice)
	before := h.memberRecord(mem)
	for _, msg := range []chain.Msg{
		chain.MsgSetMemberInvites{Member: mem, Invites: 1},
		chain.MsgSetOpenMembersPerBlock{Limit: 0},
		chain.MsgSetInitialInvites{Invites: 1},
		chain.MsgInviteMember{Controller: bob.Account()},
	} {
		h.refused(storageLead, msg, chain.ErrUnknownMsg)
		tx := h.sign(storageLead, msg)
		h.nonces[storageLead.Account()]--
		// Releases before version 4 cannot decode it and refuse its
		// proposal: so does this one, or votes would split mid-rollout.
		if err := h.m.CheckProposal([][]byte{tx}); err == nil {
			t.Fatalf("a version 3 proposal with %s passed CheckProposal", msg.Type())
		}
		wantCode(t, h.block(tx)[0], chain.ErrUnknownMsg)
		if n := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, storageLead.Account()).Nonce; n != h.nonces[storageLead.Account()] {
			t.Fatalf("%s on version 3 used nonce: %d; want %d", msg.Type(), n, h.nonces[storageLead.Account()])
		}
	}

	at := h.height + 1 + chain.MinUpgradeDelay
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionAdmission, Height: at})
	for h.height < at {
		h.block()
	}
	if v := h.version(); v != VersionAdmission {
		t.Fatalf("version %d after the upgrade", v)
	}
	if after := h.memberRecord(mem); after.Invites != 0 || after.InvitedBy != nil || after.Controller != before.Controller {
		t.Fatalf("member after the upgrade %+v; before %+v", after, before)
	}
	h.refused(alice, invite(mem, bob), chain.ErrNoInvites)
	h.do(storageLead, chain.MsgSetMemberInvites{Member: mem, Invites: 1})
	c := event[chain.MemberCreated](t, h.do(alice, invite(mem, bob)))
	if m := h.memberRecord(c.Member); m.InvitedBy == nil || *m.InvitedBy != mem {
		t.Fatalf("invited member after the upgrade %+v", m)
	}
}
