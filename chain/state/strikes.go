package state

import (
	"github.com/satchel-net/satchel/chain"
)

// maxStrikes is the most an account's pending allowance is halved:
// MaxPendingPerAccount >> maxStrikes is 1, so an account stays able to
// send one transaction at a time, whatever it did.
const maxStrikes = 6

// strikes lowers the mempool allowance of accounts whose transactions
// failed in a block. Without fees a failing transaction costs its signer
// nothing but block space every node pays for, and standing (see
// standing.go) admits what may only fail against a block's state, so
// each failed execution halves its signer's allowance of pending
// transactions, and each block since doubles it back: an account whose
// transactions keep failing has one or two in each block instead of
// MaxPendingPerAccount, and an honest client that hit one failure (a
// bucket filled meanwhile) gets its whole allowance back a block later.
//
// The record comes from committed blocks' results, so every node that
// executed the same blocks holds the same one, but it is not state: a
// restarted or state-synced node starts without it, so no consensus
// decision (FinalizeBlock, ProcessProposal) may depend on it.
type strikes struct {
	// accounts holds each recently failing account's strikes as of
	// height at; entries whose strikes have decayed are dropped at the
	// next commit, so the map holds at most maxStrikes blocks' failures.
	accounts map[chain.Account]strike
}

type strike struct {
	n  int
	at int64
}

// level returns a's strikes at committed height h: those it had at its
// last failure, less one for each block since.
func (s *strikes) level(a chain.Account, h int64) int {
	st, ok := s.accounts[a]
	if !ok || h-st.at >= int64(st.n) {
		return 0
	}
	return st.n - int(h-st.at)
}

// allowance returns how many transactions a may have pending after
// committed height h.
func (s *strikes) allowance(a chain.Account, h int64) int {
	return MaxPendingPerAccount >> s.level(a, h)
}

// record adds the failed executions of block h, one entry per failed
// transaction's signer, and drops decayed entries.
func (s *strikes) record(h int64, failed []chain.Account) {
	for a, st := range s.accounts {
		if h-st.at >= int64(st.n) {
			delete(s.accounts, a)
		}
	}
	for _, a := range failed {
		if s.accounts == nil {
			s.accounts = map[chain.Account]strike{}
		}
		s.accounts[a] = strike{n: min(s.level(a, h)+1, maxStrikes), at: h}
	}
}
