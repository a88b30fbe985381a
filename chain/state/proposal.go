package state

import (
	"fmt"
)

// ProposalTxs returns the transactions of txs, in order, that mempool
// admission admits into one block against committed state: what a
// proposer should propose (CometBFT's PrepareProposal). The mempool
// judged each transaction when it arrived, but against committed state
// plus what it held then, leniently: provisionally for a node a block
// behind (see awaited), under an allowance since halved by strikes.
// Judging the proposal afresh, as one block on the state it executes on,
// keeps out whatever of that no longer holds. A transaction that does
// not decode is left out too.
//
// It is local policy: strikes are this node's record, so ProcessProposal
// does not hold other proposers to them (CheckProposal); what it returns
// always passes CheckProposal.
func (m *Machine) ProposalTxs(txs [][]byte) [][]byte {
	m.mu.Lock()
	chainID, closed, r, height := m.chainID, m.closed, m.committedReader(), m.height
	m.mu.Unlock()
	if closed || chainID == "" {
		return nil
	}
	var p mempool
	s := store{newCache(r)}
	out := make([][]byte, 0, len(txs))
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	for _, b := range txs {
		tx, _, err := m.decoded.decode(b)
		if err != nil {
			continue
		}
		if _, err := p.admit(s, height, chainID, tx, m.strikes.allowance(tx.Signer, height), false); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// CheckProposal reports why a block proposal breaks mempool admission's
// deterministic rules on a chain of VersionAdmission or later, nil if it
// keeps them or the chain runs an older version: judged in order as one
// block on committed state — the state every honest validator holds when
// it processes the proposal — with each account's whole allowance
// (MaxPendingPerAccount: strikes are local) and nothing provisional. So
// every honest validator reaches the same verdict, and refuses a
// proposal with a transaction no mempool would have admitted: a lead's
// message from another account, more than a block's open or invited
// member quota, more invitations of one member than it has left. A
// read fault is reported too; the caller refuses the proposal then.
func (m *Machine) CheckProposal(txs [][]byte) error {
	m.mu.Lock()
	chainID, closed, r, height := m.chainID, m.closed, m.committedReader(), m.height
	m.mu.Unlock()
	if closed {
		return errClosed
	}
	v, err := stateVersion(r)
	if err != nil {
		return err
	}
	if v < VersionAdmission {
		return olderProposal(m, txs, v)
	}
	var p mempool
	s := store{newCache(r)}
	for i, b := range txs {
		tx, _, err := m.decoded.decode(b)
		if err == nil {
			_, err = p.admit(s, height, chainID, tx, MaxPendingPerAccount, false)
		}
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
	}
	return nil
}

// olderProposal judges a proposal on a chain of version v, below
// VersionAdmission, as the releases before it do: they cannot decode the
// messages newer versions added (msgVersion) and refuse a proposal
// holding one, so this release refuses it too, or a Byzantine proposer
// could split the votes of validators on mixed releases while the upgrade
// rolls out. From VersionAdmission on, CheckProposal's admission refuses
// them (versionGate).
func olderProposal(m *Machine, txs [][]byte, v uint64) error {
	for i, b := range txs {
		tx, _, err := m.decoded.decode(b)
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		if need := msgVersion(tx.Msg); need > v {
			return fmt.Errorf("transaction %d: %s is unknown below app version %d", i, tx.Msg.Type(), need)
		}
	}
	return nil
}
