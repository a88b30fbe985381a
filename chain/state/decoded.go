package state

import (
	"crypto/sha256"
	"sync"

	"github.com/satchel-net/satchel/chain"
)

// maxDecoded bounds the decoded-transaction cache by entries and
// maxDecodedBytes by the transactions' encoded size: a transaction may be
// up to MaxTxBytes, so a count alone would let one key holder make every
// validator hold count × MaxTxBytes. The cache is emptied when either
// bound would be passed.
const (
	maxDecoded      = 1 << 15
	maxDecodedBytes = 64 << 20
)

// decodedTxs remembers transactions that CheckTx admitted, by the sha256
// of their bytes. A transaction is decoded (JSON, ed25519 signature,
// canonical form) when CheckTx admits it, again when the mempool rechecks
// it after every block while it waits, and again when a block executes
// it: on a network of n validators on one host that is 3n signature
// checks per transaction. Decoding is a pure function of the bytes, so a
// remembered result is the same on every node. Only transactions that
// passed every check are remembered (keep); one leaves the cache when a
// recheck rejects it (forget) or a block executes it (take).
type decodedTxs struct {
	mu    sync.Mutex
	txs   map[[32]byte]decodedTx
	bytes int
}

type decodedTx struct {
	tx   chain.Tx
	size int
}

// decode returns the decoded tx for b, from the cache or by decoding it,
// and the key under which keep and forget find it. It remembers nothing.
func (c *decodedTxs) decode(b []byte) (chain.Tx, [32]byte, error) {
	h := sha256.Sum256(b)
	c.mu.Lock()
	d, ok := c.txs[h]
	c.mu.Unlock()
	if ok {
		return d.tx, h, nil
	}
	tx, err := chain.DecodeTx(b)
	return tx, h, err
}

// take returns the decoded tx for b and takes it out of the cache: for a
// block executing it.
func (c *decodedTxs) take(b []byte) (chain.Tx, error) {
	tx, h, err := c.decode(b)
	c.forget(h)
	return tx, err
}

// keep remembers tx, of size encoded bytes, under h.
func (c *decodedTxs) keep(h [32]byte, tx chain.Tx, size int) {
	if size > maxDecodedBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.txs[h]; ok {
		return
	}
	if c.txs == nil || len(c.txs) >= maxDecoded || c.bytes+size > maxDecodedBytes {
		c.txs, c.bytes = make(map[[32]byte]decodedTx, 1024), 0
	}
	c.txs[h] = decodedTx{tx: tx, size: size}
	c.bytes += size
}

// forget takes the transaction under h out of the cache, if it is there.
func (c *decodedTxs) forget(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.txs[h]; ok {
		delete(c.txs, h)
		c.bytes -= d.size
	}
}

// size returns the number of remembered transactions and their bytes.
func (c *decodedTxs) size() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.txs), c.bytes
}
