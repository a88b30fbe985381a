package state

import (
	"github.com/satchel-net/satchel/chain"
)

// keyMemberRate holds how many members the current block registered: a
// memberRate record, reset by the first create_member of each block.
const keyMemberRate = "s/mrate"

type memberRate struct {
	Height int64  `json:"height"`
	Count  uint64 `json:"count"`
}

// countMember charges one member to the block's quota, or fails with
// ErrMembersPerBlock when the block has registered Limits.MembersPerBlock
// already. A failing transaction's writes are discarded, so only members
// actually created count.
func (x *execCtx) countMember() error {
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
	if r.Count >= p.Limits.MembersPerBlock {
		return chain.Errorf(chain.ErrMembersPerBlock, "block %d has registered %s already, the most one block may (membersPerBlock); try again in the next block", x.block.Height, chain.Plural(int(r.Count), "member"))
	}
	r.Count++
	return x.s.setJSON(keyMemberRate, r)
}

func (x *execCtx) setMembersPerBlock(m chain.MsgSetMembersPerBlock) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.MembersPerBlock = m.Limit
	return x.limitsUpdated()
}
