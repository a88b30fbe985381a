package state

import (
	"crypto/sha256"
	"sync"

	"github.com/satchel-net/satchel/chain"
)

// maxDecoded bounds the decoded-transaction cache; it is emptied when full.
const maxDecoded = 1 << 15

// decodedTxs remembers transactions that decoded and verified, by the
// sha256 of their bytes. A transaction is decoded (JSON, ed25519
// signature, canonical form) when CheckTx admits it, again when the
// mempool rechecks it after every block while it waits, and again when a
// block executes it: on a network of n validators on one host that is
// 3n signature checks per transaction. Decoding is a pure function of the
// bytes, so a remembered result is the same on every node; a transaction
// leaves the cache when a block executes it.
type decodedTxs struct {
	mu  sync.Mutex
	txs map[[32]byte]chain.Tx
}

// decode returns the decoded tx, from the cache or by decoding it. Keep
// records a successful decode.
func (c *decodedTxs) decode(b []byte, keep bool) (chain.Tx, error) {
	h := sha256.Sum256(b)
	c.mu.Lock()
	tx, ok := c.txs[h]
	if ok && !keep {
		delete(c.txs, h)
	}
	c.mu.Unlock()
	if ok {
		return tx, nil
	}
	tx, err := chain.DecodeTx(b)
	if err != nil || !keep {
		return tx, err
	}
	c.mu.Lock()
	if c.txs == nil || len(c.txs) >= maxDecoded {
		c.txs = make(map[[32]byte]chain.Tx, 1024)
	}
	c.txs[h] = tx
	c.mu.Unlock()
	return tx, nil
}
