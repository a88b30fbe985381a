package state

import (
	"github.com/satchel-net/satchel/chain"
)

// Member creation by invitation (VersionAdmission on), as Joystream's
// membership pallet does it: a member's controller spends one of the
// member's invitations (Member.Invites) to register another account's
// member; the storage lead invites without limit and hands invitations
// out. Invited registrations have their own per-block quota
// (Limits.MembersPerBlock), so a flood of open create_member from fresh
// keys cannot keep them out of a block; the lead may close open
// registration (Limits.OpenMembersPerBlock 0).

// inviteMember registers m.Controller's member, invited by m.Member (or
// the lead), spending one of the inviter's invitations unless the lead
// signs.
func (x *execCtx) inviteMember(m chain.MsgInviteMember) error {
	inviter, lead, err := x.inviter(m)
	if err != nil {
		return err
	}
	if err := x.countMember(true); err != nil {
		return err
	}
	mem := chain.Member{Controller: m.Controller, Handle: m.Handle, InvitedByLead: lead}
	if inviter != nil {
		id := inviter.ID
		mem.InvitedBy = &id
		if !lead {
			inviter.Invites--
			if err := x.s.setJSON(memberKey(id), *inviter); err != nil {
				return err
			}
			x.emit(chain.MemberInvitesUpdated{Member: id, Invites: inviter.Invites})
		}
	}
	return x.registerMember(mem)
}

// inviter checks that the signer may send m: it returns the inviting
// member (nil when the lead names none) and whether the signer is the
// storage lead, whose invitations are unlimited.
func (x *execCtx) inviter(m chain.MsgInviteMember) (*chain.Member, bool, error) {
	p, err := x.loadParams()
	if err != nil {
		return nil, false, err
	}
	lead := x.signer == p.StorageLead
	if m.Member == nil {
		if !lead {
			return nil, false, chain.Errorf(chain.ErrUnauthorized, "invite_member names no inviting member: only the storage lead (account %s) invites without one; name the member whose invitation account %s spends", p.StorageLead, x.signer)
		}
		return nil, true, nil
	}
	mem, err := x.member(*m.Member)
	if err != nil {
		return nil, lead, err
	}
	if x.signer != mem.Controller {
		return nil, lead, chain.Errorf(chain.ErrUnauthorized, "only member %d's controller account %s may spend its invitations; account %s is not it", mem.ID, mem.Controller, x.signer)
	}
	if !lead && mem.Invites == 0 {
		return nil, lead, chain.Errorf(chain.ErrNoInvites, "member %d has no invitations left; the storage lead gives members invitations (set-member-invites)", mem.ID)
	}
	return &mem, lead, nil
}

// setMemberInvites sets a member's invitations left. Storage lead.
func (x *execCtx) setMemberInvites(m chain.MsgSetMemberInvites) error {
	if _, err := x.requireLead(chain.StorageGroup); err != nil {
		return err
	}
	mem, err := x.member(m.Member)
	if err != nil {
		return err
	}
	mem.Invites = m.Invites
	if err := x.s.setJSON(memberKey(mem.ID), mem); err != nil {
		return err
	}
	x.emit(chain.MemberInvitesUpdated{Member: mem.ID, Invites: mem.Invites})
	return nil
}

func (x *execCtx) setOpenMembersPerBlock(m chain.MsgSetOpenMembersPerBlock) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	n := m.Limit
	p.Limits.OpenMembersPerBlock = &n
	return x.limitsUpdated()
}

func (x *execCtx) setInitialInvites(m chain.MsgSetInitialInvites) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.InitialInvites = m.Invites
	return x.limitsUpdated()
}

// inviteRoom refuses an invite_member once the mempool holds as many
// invited registrations as one block may (Limits.MembersPerBlock), or as
// many of one inviter's as it has invitations left: more would only fail
// in their block. The lead's are bounded by the quota alone.
func (p *mempool) inviteRoom(x *execCtx, m chain.MsgInviteMember) error {
	params, err := x.loadParams()
	if err != nil {
		return errInternal(err)
	}
	if p.invited >= params.Limits.MembersPerBlock {
		return chain.Errorf(chain.ErrMembersPerBlock, "the mempool holds %s already, the most one block may register (membersPerBlock); try again after the next block", chain.Plural(int(p.invited), "invited member registration"))
	}
	if m.Member == nil || x.signer == params.StorageLead {
		return nil
	}
	mem, err := x.member(*m.Member)
	if err != nil {
		return nil // a member a waiting transaction creates: its block judges
	}
	if p.spent[mem.ID] >= mem.Invites {
		return chain.Errorf(chain.ErrNoInvites, "member %d has %s left and as many invite_member wait in the mempool already; wait for the next block", mem.ID, chain.Plural(int(mem.Invites), "invitation"))
	}
	return nil
}

func (x *execCtx) isStorageLead() bool {
	p, err := x.loadParams()
	return err == nil && x.signer == p.StorageLead
}
