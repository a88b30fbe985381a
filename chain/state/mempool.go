package state

import (
	"errors"

	"github.com/satchel-net/satchel/chain"
)

// MaxPendingPerAccount is how many transactions of one account CheckTx
// admits to the mempool between two commits: room for a client's
// concurrent submissions, too few for one key to fill blocks.
const MaxPendingPerAccount = 64

// mempool is what CheckTx admitted since the last commit. Satchel has no
// fees, so mempool admission is what keeps a stream of signed
// transactions nobody may execute out of blocks. Commit clears it;
// CometBFT's recheck after each commit rebuilds it from the transactions
// still waiting.
//
// FinalizeBlock does not repeat any of this: a block a proposer fills
// otherwise still executes as before (deliver uses the nonce of a failing
// message, so its public bytes cannot be replayed later). An honest
// proposer holds its proposal to the same rules (ProposalTxs), and from
// VersionAdmission on every validator holds every proposal to their
// deterministic part (CheckProposal): from then on, a change to the
// counts here or to standing is a consensus change and takes a new
// version.
type mempool struct {
	// accounts holds each waiting signer's nonces (committed plus
	// admitted), so one signed nonce cannot fill the mempool with many
	// different transactions, and how many of its transactions wait.
	accounts map[chain.Account]pendingAccount
	// granted holds the accounts a waiting transaction gives a role: the
	// account of an add_worker, the transactor of an accepted storage
	// invitation. Their own transactions may follow in the same block.
	granted map[chain.Account]bool
	// members counts the waiting create_member transactions, invited the
	// waiting invite_member, spent these by inviting member (the lead's
	// are not counted: unlimited).
	members, invited uint64
	spent            map[chain.MemberID]uint64
	// provisional counts the accounts admitted only as members the next
	// block may create (see awaited), provisionalWorkers those admitted
	// as workers it may add (awaitedWorker); an account admitted as both
	// counts in both.
	provisional, provisionalWorkers uint64
	// params are the committed parameters at height paramsAt, decoded
	// once rather than for every transaction checked.
	params   *paramsRecord
	paramsAt int64
}

type pendingAccount struct {
	nonces nonces
	count  int
	// lowest is the lowest nonce waiting.
	lowest uint64
	// provisional: the account is unknown to committed state and was
	// admitted for naming a member the next block may create (asMember)
	// or a worker it may add (asWorker); it does not make the account
	// known. The two are counted apart: an account admitted as one and
	// then naming the other takes a slot of that kind too, so it cannot
	// ride one bound past the other.
	provisional, asMember, asWorker bool
}

// maxProvisionalPending is how many transactions an account admitted
// provisionally may have waiting: enough for a new member's first steps
// (a channel, an upload), few since the next commit's recheck drops
// them all when the member turns out not to be the account's.
const maxProvisionalPending = 4

// admit checks tx against committed state at height read through s and
// what the mempool holds, and records it when admitted. allowance is how
// many transactions the signer may have waiting (see strikes); mayAwait
// whether tx may be admitted provisionally (see awaited), which it
// reports.
func (p *mempool) admit(s store, height int64, chainID string, tx chain.Tx, allowance int, mayAwait bool) (provisional bool, err error) {
	committed, err := checkTx(s, chainID, tx)
	if err != nil {
		return false, err
	}
	acct, waiting := p.accounts[tx.Signer]
	if !waiting {
		acct.nonces, acct.lowest = committed, tx.Nonce
	} else if err := acct.nonces.check(tx.Signer, tx.Nonce); err != nil {
		return false, err // admitted already with another transaction
	} else if err := nonceSpan(tx.Signer, acct.lowest, tx.Nonce); err != nil {
		return false, err
	}
	if err := pendingRoom(tx.Signer, acct, allowance); err != nil {
		return false, err
	}
	x := &execCtx{s: s, signer: tx.Signer}
	if p.params != nil && p.paramsAt == height {
		x.params = p.params
	}
	defer func() {
		if x.params != nil {
			p.params, p.paramsAt = x.params, height
		}
	}()
	known := committed.max > 0 || waiting && !acct.provisional
	if provisional, err = p.judge(x, acct, known, mayAwait, tx.Msg); err != nil {
		return false, errInternal(err)
	}
	if err := upgradeRoom(s.c, tx.Msg, height+1); err != nil {
		return false, err
	}
	_, member := tx.Msg.(chain.MsgCreateMember)
	if member {
		if err := p.memberRoom(x); err != nil {
			return false, err
		}
	}
	invite, invited := tx.Msg.(chain.MsgInviteMember)
	if invited {
		if err := p.inviteRoom(x, invite); err != nil {
			return false, err
		}
	}
	if p.accounts == nil {
		p.accounts, p.granted = map[chain.Account]pendingAccount{}, map[chain.Account]bool{}
		p.spent = map[chain.MemberID]uint64{}
	}
	acct.nonces, acct.count, acct.lowest = acct.nonces.use(tx.Nonce), acct.count+1, min(acct.lowest, tx.Nonce)
	if provisional {
		p.countProvisional(&acct, tx.Msg)
	}
	if member {
		p.members++
	}
	if invited {
		p.invited++
		if invite.Member != nil && !x.isStorageLead() {
			p.spent[*invite.Member]++
		}
	}
	p.accounts[tx.Signer] = acct
	if a := grantee(tx); a != "" && !provisional {
		// A provisional transaction gives no role: its account is not
		// known, so neither is the account it names.
		p.granted[a] = true
	}
	return provisional, nil
}

// judge checks the signer's standing for msg (see standing); known
// tells whether the signer has a nonce on chain or a transaction waiting
// (not provisionally). It reports whether msg is admitted only
// provisionally (see awaited), which mayAwait allows.
func (p *mempool) judge(x *execCtx, acct pendingAccount, known, mayAwait bool, msg chain.Msg) (bool, error) {
	granted := p.granted[x.signer]
	known = known || granted
	err := standing(x, known, granted, msg)
	if err == nil || known || !mayAwait {
		return false, err
	}
	return p.awaited(x, acct, msg, err)
}

// countProvisional records that acct was admitted provisionally for
// msg, taking a slot of msg's kind (a new worker's or a new member's) the
// first time the account names one of that kind.
func (p *mempool) countProvisional(acct *pendingAccount, msg chain.Msg) {
	acct.provisional = true
	if _, _, worker := namedWorker(msg); worker {
		if !acct.asWorker {
			acct.asWorker = true
			p.provisionalWorkers++
		}
	} else if !acct.asMember {
		acct.asMember = true
		p.provisional++
	}
}

// nonceSpan refuses nonce v of an account whose lowest waiting nonce is
// lowest when v is more than NonceWindow above it: a block holding both
// in another order than the mempool's (another proposer's) would execute
// v first and refuse the lower one, which then fails in its block.
func nonceSpan(a chain.Account, lowest, v uint64) error {
	if v > lowest && v-lowest > NonceWindow {
		return chain.Errorf(chain.ErrTooManyPending, "nonce %d of account %s is more than %d above its lowest waiting nonce %d: a block taking them in another order would refuse that one; wait for the next block", v, a, NonceWindow, lowest)
	}
	return nil
}

// pendingRoom refuses a transaction of an account that has its allowance
// waiting already.
func pendingRoom(a chain.Account, acct pendingAccount, allowance int) error {
	switch {
	case acct.provisional && acct.count >= maxProvisionalPending:
		return chain.Errorf(chain.ErrTooManyPending, "too many pending transactions from account %s (%d wait in the mempool, the most an account this node does not know yet may have); wait for the next block", a, acct.count)
	case acct.count >= allowance && allowance < MaxPendingPerAccount:
		return chain.Errorf(chain.ErrTooManyPending, "too many pending transactions from account %s (%d wait in the mempool; its transactions failed in recent blocks, which lowered its allowance from %d to %d, doubling back each block); wait for the next block", a, acct.count, MaxPendingPerAccount, allowance)
	case acct.count >= allowance:
		return chain.Errorf(chain.ErrTooManyPending, "too many pending transactions from account %s (%d wait in the mempool, the most one account may have); wait for the next block", a, acct.count)
	}
	return nil
}

// awaited answers for a message from an account committed state does not
// know whose standing failed with err: it is admitted provisionally when
// err says it names a member that does not exist yet but that the next
// block may create — an ID among the next membersPerBlock — so a node one
// block behind the network admits a new member's first transactions
// (create_channel, an upload into its member bag) rather than drop them
// for good. At most membersPerBlock accounts at once, as many as one
// block can make members: best effort, first come first served, so
// throwaway keys guessing the next IDs can take the room for a block,
// leaving a new member refused as before provisional admission. It costs
// no block space: a proposal never holds a provisional transaction
// (ProposalTxs), and once this node commits the block it waited for, the
// recheck judges it as any other, but never provisionally again
// (Machine.admit): it waited its one block.
func (p *mempool) awaited(x *execCtx, acct pendingAccount, msg chain.Msg, err error) (bool, error) {
	if errors.Is(err, chain.ErrWorkerNotFound) {
		return p.awaitedWorker(x, acct, msg, err)
	}
	if !errors.Is(err, chain.ErrMemberNotFound) && !errors.Is(err, chain.ErrBagNotFound) {
		return false, err
	}
	id, ok := namedMember(msg)
	if !ok {
		return false, err
	}
	params, perr := x.loadParams()
	if perr != nil {
		return false, perr
	}
	next, perr := x.s.getUint(keySeq + seqMember)
	if perr != nil {
		return false, perr
	}
	// Open and invited registrations have a quota each (the open one
	// unused before VersionAdmission: an overestimate, local policy).
	limit := params.Limits.OpenMembers() + params.Limits.MembersPerBlock
	if id < next || id-next >= limit || !acct.asMember && p.provisional >= limit {
		return false, err
	}
	return true, nil
}

// namedMember returns the member a message of a new member names: the
// member of create_channel, the member of a member bag an upload names.
func namedMember(msg chain.Msg) (uint64, bool) {
	switch m := msg.(type) {
	case chain.MsgCreateChannel:
		return uint64(m.Member), true
	case chain.MsgRegisterDataObjects:
		if t, id, ok := m.Bag.Dynamic(); ok && t == chain.MemberBagType {
			return id, true
		}
	}
	return 0, false
}

// memberRoom refuses a create_member once the mempool holds as many as
// one block may register openly (Limits.OpenMembers): more would only
// fail in their block.
func (p *mempool) memberRoom(x *execCtx) error {
	params, err := x.loadParams()
	if err != nil {
		return errInternal(err)
	}
	if limit := params.Limits.OpenMembers(); p.members >= limit {
		name := openQuotaName(params.Limits)
		return errMemberQuota(limit, name, chain.Errorf(chain.ErrMembersPerBlock, "the mempool holds %s already, the most one block may register (%s); try again after the next block", chain.Plural(int(p.members), "member registration"), name))
	}
	return nil
}

// grantee returns the account tx gives a role, or "".
func grantee(tx chain.Tx) chain.Account {
	switch m := tx.Msg.(type) {
	case chain.MsgAddWorker:
		return m.Account
	case chain.MsgInviteMember:
		return m.Controller
	case chain.MsgAcceptStorageBucketInvitation:
		if m.Transactor != "" {
			return m.Transactor
		}
		return tx.Signer
	}
	return ""
}
