package state

import (
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
// None of this is consensus: a block a proposer fills otherwise still
// executes as before (deliver uses the nonce of a failing message, so its
// public bytes cannot be replayed later).
type mempool struct {
	// accounts holds each waiting signer's nonces (committed plus
	// admitted), so one signed nonce cannot fill the mempool with many
	// different transactions, and how many of its transactions wait.
	accounts map[chain.Account]pendingAccount
	// granted holds the accounts a waiting transaction gives a role: the
	// account of an add_worker, the transactor of an accepted storage
	// invitation. Their own transactions may follow in the same block.
	granted map[chain.Account]bool
	// members counts the waiting create_member transactions.
	members uint64
	// params are the committed parameters at height paramsAt, decoded
	// once rather than for every transaction checked.
	params   *paramsRecord
	paramsAt int64
}

type pendingAccount struct {
	nonces nonces
	count  int
}

// admit checks tx against committed state at height read through s and
// what the mempool holds, and records it when admitted.
func (p *mempool) admit(s store, height int64, chainID string, tx chain.Tx) error {
	committed, err := checkTx(s, chainID, tx)
	if err != nil {
		return err
	}
	acct, waiting := p.accounts[tx.Signer]
	if !waiting {
		acct.nonces = committed
	} else if err := acct.nonces.check(tx.Signer, tx.Nonce); err != nil {
		return err // admitted already with another transaction
	}
	if acct.count >= MaxPendingPerAccount {
		return chain.Errorf(chain.ErrTooManyPending, "too many pending transactions from account %s (%d wait in the mempool, the most one account may have); wait for the next block", tx.Signer, acct.count)
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
	granted := p.granted[tx.Signer]
	if err := standing(x, committed.max > 0 || waiting || granted, granted, tx.Msg); err != nil {
		return errInternal(err)
	}
	_, member := tx.Msg.(chain.MsgCreateMember)
	if member {
		if err := p.memberRoom(x); err != nil {
			return err
		}
	}
	if p.accounts == nil {
		p.accounts, p.granted = map[chain.Account]pendingAccount{}, map[chain.Account]bool{}
	}
	acct.nonces, acct.count = acct.nonces.use(tx.Nonce), acct.count+1
	p.accounts[tx.Signer] = acct
	if a := grantee(tx); a != "" {
		p.granted[a] = true
	}
	if member {
		p.members++
	}
	return nil
}

// memberRoom refuses a create_member once the mempool holds as many as
// one block may register (Limits.MembersPerBlock): more would only fail
// in their block, and fresh keys could keep honest members out of it.
func (p *mempool) memberRoom(x *execCtx) error {
	params, err := x.loadParams()
	if err != nil {
		return errInternal(err)
	}
	if p.members >= params.Limits.MembersPerBlock {
		return chain.Errorf(chain.ErrMembersPerBlock, "the mempool holds %s already, the most one block may register (membersPerBlock); try again after the next block", chain.Plural(int(p.members), "member registration"))
	}
	return nil
}

// grantee returns the account tx gives a role, or "".
func grantee(tx chain.Tx) chain.Account {
	switch m := tx.Msg.(type) {
	case chain.MsgAddWorker:
		return m.Account
	case chain.MsgAcceptStorageBucketInvitation:
		if m.Transactor != "" {
			return m.Transactor
		}
		return tx.Signer
	}
	return ""
}
