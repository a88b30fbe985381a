package state

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
// It is local policy, not consensus: strikes are this node's record, so
// ProcessProposal does not hold other proposers to it.
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
