package state

import (
	"github.com/satchel-net/satchel/chain"
)

// keyMemberRate holds how many members the current block registered: a
// memberRate record, reset by the first registration of each block.
const keyMemberRate = "s/mrate"

// memberRate counts one block's registrations: Count by create_member
// (open), Invited by invite_member (from VersionAdmission on; before it
// every registration is open). Each has its own quota, so a block full of
// open registrations still has room for invited ones.
type memberRate struct {
	Height  int64  `json:"height"`
	Count   uint64 `json:"count"`
	Invited uint64 `json:"invited,omitempty"`
}

// countMember charges one member to the block's quota — the open one
// (Limits.OpenMembers) or, invited, Limits.MembersPerBlock — or fails with
// ErrMembersPerBlock when the block has registered that many already. A
// failing transaction's writes are discarded, so only members actually
// created count.
func (x *execCtx) countMember(invited bool) error {
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	var r memberRate
	if _, err := x.s.getJSON(keyMemberRate, &r); err != nil {
		return err
	}
	if r.Height != x.block.Height {
		r = memberRate{Height: x.block.Height}
	}
	n, limit, name := &r.Count, p.Limits.OpenMembers(), openQuotaName(p.Limits)
	if invited {
		n, limit, name = &r.Invited, p.Limits.MembersPerBlock, "membersPerBlock"
	}
	if *n >= limit {
		return errMemberQuota(limit, name, chain.Errorf(chain.ErrMembersPerBlock, "block %d has registered %s already, the most one block may (%s); try again in the next block", x.block.Height, chain.Plural(int(*n), memberKind(invited)), name))
	}
	*n++
	return x.s.setJSON(keyMemberRate, r)
}

// errMemberQuota refuses a registration under a quota of 0 as not
// allowed: registration of that kind is closed, not busy, and waiting for
// the next block would not help. err otherwise.
func errMemberQuota(limit uint64, name string, err error) error {
	if limit == 0 {
		return chain.Errorf(chain.ErrUnauthorized, "open registration is closed on this chain (%s is 0): ask a member to invite the account (satchel member invite)", name)
	}
	return err
}

// openQuotaName names the limit that bounds open registrations.
func openQuotaName(l chain.Limits) string {
	if l.OpenMembersPerBlock == nil {
		return "membersPerBlock"
	}
	return "openMembersPerBlock"
}

func memberKind(invited bool) string {
	if invited {
		return "invited member"
	}
	return "member"
}

func (x *execCtx) setMembersPerBlock(m chain.MsgSetMembersPerBlock) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.MembersPerBlock = m.Limit
	return x.limitsUpdated()
}
