package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"

	"github.com/satchel-net/satchel/chain"
)

// Machine is the data directory's deterministic state machine over an IAVL
// tree in goleveldb. It implements chain.Machine. All methods are safe for
// concurrent use: CheckTx and Query read committed state and may run
// alongside FinalizeBlock.
type Machine struct {
	db     iavldb.DB
	ownsDB bool
	log    *slog.Logger

	mu      sync.Mutex
	tree    *iavl.MutableTree
	reads   *iavl.MutableTree // opens committed versions for readers
	height  int64
	appHash []byte
	chainID string
	// committed reads the last saved version (nil before the first block),
	// previous the one before it (nil before the second).
	committed, previous *iavl.ImmutableTree
	// genesis holds the genesis writes until the first block saves them
	// with its own: version h of the tree is the state after block h, and
	// a node that stops before block 1 is given InitChain again.
	genesis *cache
	pending *pendingBlock
	closed  bool

	// checkMu guards pool, what CheckTx admitted since the last commit,
	// strikes, the accounts whose transactions failed lately, and the
	// hashes of the transactions admitted provisionally since the last
	// commit (awaiting) and before it (awaited): each may wait one block.
	checkMu           sync.Mutex
	pool              mempool
	strikes           strikes
	awaiting, awaited map[[32]byte]bool

	// decoded holds the transactions CheckTx admitted, decoded, until a
	// block executes them.
	decoded decodedTxs
}

// pendingBlock is a block finalized but not yet committed.
type pendingBlock struct {
	height  int64
	appHash []byte
	writes  *cache
	// events are the block's own events (EndBlockEvents).
	events []chain.Event
	// upgradedTo is the app version the block moved the chain to (0: none).
	upgradedTo uint64
	// failed holds the signer of each transaction whose message failed,
	// for mempool admission's strikes (never for consensus).
	failed []chain.Account
}

var (
	_ chain.Machine    = (*Machine)(nil)
	_ chain.EndBlocker = (*Machine)(nil)
	_ chain.Upgrader   = (*Machine)(nil)
)

// Option configures a Machine.
type Option func(*Machine)

// WithLogger sets the logger, used as given (attach a component attribute
// yourself); the default is slog.Default() with component=chain/state. The
// machine logs genesis and every block at Debug, a panicking transaction at
// Error.
func WithLogger(l *slog.Logger) Option {
	return func(m *Machine) {
		if l != nil {
			m.log = l
		}
	}
}

// New opens (or creates) the machine's goleveldb database in dir (as
// dir/state.db) and resumes from its last committed height.
func New(dir string, opts ...Option) (*Machine, error) {
	db, err := iavldb.NewGoLevelDB("state", dir)
	if err != nil {
		return nil, fmt.Errorf("open data directory state in %s: %w", dir, err)
	}
	m, err := open(db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	m.ownsDB = true
	return m, nil
}

// NewFromDB runs the machine on an open database, which the caller keeps
// and closes after Close.
func NewFromDB(db iavldb.DB, opts ...Option) (*Machine, error) {
	return open(db, opts)
}

// NewMemory returns a machine on an in-memory database, for tests.
func NewMemory(opts ...Option) (*Machine, error) {
	db := iavldb.NewMemDB()
	m, err := open(db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	m.ownsDB = true
	return m, nil
}

func open(db iavldb.DB, opts []Option) (*Machine, error) {
	m := &Machine{db: db, log: slog.Default().With("component", "chain/state")}
	for _, o := range opts {
		o(m)
	}
	tree, v, err := newTree(db)
	if err != nil {
		return nil, err
	}
	m.tree, m.height, m.reads = tree, v, newReadTree(db)
	if v > 0 {
		m.appHash = tree.Hash()
		if m.committed, err = m.reads.GetImmutable(v); err != nil {
			return nil, fmt.Errorf("load committed state at height %d: %w", v, err)
		}
		if v > 1 {
			if m.previous, err = m.reads.GetImmutable(v - 1); err != nil {
				return nil, fmt.Errorf("load committed state at height %d: %w", v-1, err)
			}
		}
	}
	var p paramsRecord
	if ok, err := (store{newCache(m.committedReader())}).getJSON(keyParams, &p); err != nil {
		return nil, err
	} else if ok {
		m.chainID = p.ChainID
	}
	return m, nil
}

// Info returns the last committed height and app hash.
func (m *Machine) Info() (int64, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, nil, errClosed
	}
	return m.height, bytes.Clone(m.appHash), nil
}

var errClosed = errors.New("data directory state machine is closed")

// InitChain validates g, writes the genesis state and commits it at height
// 0, returning the genesis app hash. It may be called again while no block
// has been committed: the earlier genesis is replaced.
func (m *Machine) InitChain(g chain.Genesis, genesisTime time.Time) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if m.height > 0 {
		return nil, fmt.Errorf("init chain: the state is already at height %d; start from an empty data directory", m.height)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	if v := g.AppVersion; v != 0 && (v < VersionMerkle || v > Version) {
		return nil, fmt.Errorf("init chain: the genesis names app version %d; this binary runs versions %d to %d: run a satchel release of that version, or start a new chain", v, VersionMerkle, Version)
	}
	// Any earlier genesis was never saved: start from the empty tree.
	c := newCache(emptyReader{})
	if err := writeGenesis(store{c}, g, genesisTime); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	if err := writeValidators(store{c}, g.Validators); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	if err := deriveIndexes(c); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	m.tree.Rollback()
	if err := c.applyTo(m.tree); err != nil {
		m.tree.Rollback()
		return nil, fmt.Errorf("init chain: %w", err)
	}
	hash := m.tree.WorkingHash()
	m.height, m.appHash, m.chainID, m.pending, m.genesis = 0, hash, g.ChainID, nil, c
	m.checkMu.Lock()
	// Admitted against the genesis replaced:
	m.pool, m.strikes, m.awaiting, m.awaited = mempool{}, strikes{}, nil, nil
	m.checkMu.Unlock()
	m.log.Debug("genesis written", "chainId", g.ChainID, "appHash", fmt.Sprintf("%X", hash))
	return bytes.Clone(hash), nil
}

// CheckTx checks decoding, signature, chain ID, the message's basic
// validity and the nonce against committed state, then mempool
// admission's own rules (see mempool): the signer's standing for its
// message (or, for an account this node does not know yet, a member the
// next block may create: see awaited), at most MaxPendingPerAccount
// waiting transactions per account (fewer while its transactions fail:
// see strikes), at most a block's member quota of create_member.
func (m *Machine) CheckTx(txb []byte) error {
	m.mu.Lock()
	chainID, closed, r, height := m.chainID, m.closed, m.committedReader(), m.height
	m.mu.Unlock()
	if closed {
		return errClosed
	}
	if chainID == "" {
		return chain.Errorf(chain.ErrInternal, "the data directory has no genesis yet")
	}
	tx, h, err := m.decoded.decode(txb)
	if err != nil {
		return err
	}
	if err := m.admit(r, height, chainID, tx, h); err != nil {
		// A recheck that fails drops what an earlier check remembered.
		m.decoded.forget(h)
		return err
	}
	// Remembered only once admitted: a rejected transaction costs the
	// cache nothing.
	m.decoded.keep(h, tx, len(txb))
	return nil
}

// admit checks tx, of hash h, against committed state at height read
// through r and the mempool (see mempool.admit), and records it there
// when admitted. A transaction admitted provisionally before the last
// commit is not admitted so again: the block it waited for came.
func (m *Machine) admit(r reader, height int64, chainID string, tx chain.Tx, h [32]byte) error {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	provisional, err := m.pool.admit(store{newCache(r)}, height, chainID, tx, m.strikes.allowance(tx.Signer, height), !m.awaited[h])
	if provisional {
		if m.awaiting == nil {
			m.awaiting = map[[32]byte]bool{}
		}
		m.awaiting[h] = true
	}
	return err
}

// checkTx runs the checks that do not execute the message and returns
// the signer's nonces in s.
func checkTx(s store, chainID string, tx chain.Tx) (nonces, error) {
	if err := versionGate(s.c, tx.Msg); err != nil {
		return nonces{}, err
	}
	if tx.ChainID != chainID {
		return nonces{}, chain.Errorf(chain.ErrWrongChain, "transaction was signed for chain %q, this is %q; sign for the right chain", tx.ChainID, chainID)
	}
	if err := tx.Msg.ValidateBasic(); err != nil {
		return nonces{}, err
	}
	n, err := loadNonces(s, tx.Signer)
	if err != nil {
		return n, errInternal(err)
	}
	return n, n.check(tx.Signer, tx.Nonce)
}

// FinalizeBlock executes the block's transactions in order, each in its own
// cache over the block's buffer: a failing transaction's changes are
// discarded and it yields its error code; it still uses its nonce when it
// was validly signed with a usable nonce (see deliver). The returned app hash is
// sha256(previous app hash || digest of the block's writes), or the
// previous hash when the block wrote nothing.
func (m *Machine) FinalizeBlock(b chain.BlockInfo, txs [][]byte) ([]chain.TxResult, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, errClosed
	}
	if m.chainID == "" {
		return nil, nil, errors.New("finalize block: the data directory has no genesis; call InitChain first")
	}
	if b.Height != m.height+1 {
		return nil, nil, fmt.Errorf("finalize block: height %d does not follow the committed height %d", b.Height, m.height)
	}
	db := &faultReader{parent: m.committedReader()}
	blk := newCache(db)
	results := make([]chain.TxResult, len(txs))
	var failedBy []chain.Account
	for i, txb := range txs {
		var by chain.Account
		results[i], by = m.deliver(blk, b, txb)
		if by != "" {
			failedBy = append(failedBy, by)
		}
		if db.err != nil {
			return nil, nil, fmt.Errorf("finalize block %d: reading state failed: %w; stopping rather than diverge from the network", b.Height, db.err)
		}
	}
	endEvents := m.endBlock(blk, b)
	if db.err != nil {
		return nil, nil, fmt.Errorf("finalize block %d: reading state failed: %w; stopping rather than diverge from the network", b.Height, db.err)
	}
	if err := deriveIndexes(blk); err != nil {
		return nil, nil, fmt.Errorf("finalize block %d: index: %w; stopping rather than diverge from the network", b.Height, err)
	}
	up, err := m.runUpgrade(blk, b)
	if err == nil {
		err = db.err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("finalize block %d: app version upgrade: %w; stopping rather than diverge from the network", b.Height, err)
	}
	var upgradedTo uint64
	if up != nil {
		endEvents, upgradedTo = append(endEvents, chain.NewEvent(*up)), up.To
	}
	hash, err := m.stage(blk)
	if err != nil {
		return nil, nil, fmt.Errorf("finalize block %d: %w", b.Height, err)
	}
	m.pending = &pendingBlock{height: b.Height, appHash: hash, writes: blk, events: endEvents, upgradedTo: upgradedTo, failed: failedBy}
	m.log.Debug("block finalized", "height", b.Height, "txs", len(txs), "writes", len(blk.writes))
	return results, bytes.Clone(hash), nil
}

// deliver executes one transaction against the block buffer. A
// transaction that decodes, verifies and has a usable nonce uses its nonce
// even when its message fails: only the nonce is written, the message's
// writes are discarded. Otherwise the signed bytes of a failed transaction,
// public in the block, could be replayed by anyone once the state lets
// them succeed. Mempool admission (CheckTx, see mempool) keeps out what
// its signer may never execute; deliver deliberately does not repeat
// those checks: what a block executes is consensus, admission is not.
// It also returns the signer when the message failed (for strikes).
func (m *Machine) deliver(blk *cache, b chain.BlockInfo, txb []byte) (chain.TxResult, chain.Account) {
	tx, err := m.decoded.take(txb)
	var n nonces
	if err == nil {
		n, err = checkTx(store{blk}, m.chainID, tx)
	}
	if err != nil {
		return failed(err), ""
	}
	txc := newCache(blk)
	x := &execCtx{s: store{txc}, block: b, signer: tx.Signer}
	if err := m.run(x, tx.Msg); err != nil {
		n.use(tx.Nonce).save(store{blk}, tx.Signer)
		return failed(err), tx.Signer
	}
	n.use(tx.Nonce).save(x.s, tx.Signer)
	txc.mergeInto(blk)
	return chain.TxResult{Code: chain.CodeOK, Events: x.events}, ""
}

// endBlock runs the block's own state changes after its transactions —
// pending objects expiring at this height — in a cache merged into the
// block only when they succeed, and returns their events. A failure is a
// bug but deterministic on every node: it is logged and the block's other
// changes stand.
func (m *Machine) endBlock(blk *cache, b chain.BlockInfo) (events []chain.Event) {
	c := newCache(blk)
	x := &execCtx{s: store{c}, block: b}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return x.expirePending()
	}()
	if err != nil {
		m.log.Error("expiring pending data objects failed; they stay", "height", b.Height, "err", err)
		return nil
	}
	c.mergeInto(blk)
	return x.events
}

// EndBlockEvents returns the events of the last finalized block outside
// its transactions: ObjectsDeleted{reason: expired} for pending objects
// that expired, AppVersionUpgraded when the block ended with an upgrade.
// It implements chain.EndBlocker.
func (m *Machine) EndBlockEvents() []chain.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return nil
	}
	return slices.Clone(m.pending.events)
}

// run executes msg, turning a panic (a bug, but deterministic on every
// node) into an internal error so the block still finalizes.
func (m *Machine) run(x *execCtx, msg chain.Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("transaction panicked", "type", msg.Type(), "panic", r)
			err = chain.Errorf(chain.ErrInternal, "data directory internal error executing %s: %v", msg.Type(), r)
		}
	}()
	return x.exec(msg)
}

func failed(err error) chain.TxResult {
	err = errInternal(err)
	return chain.TxResult{Code: chain.CodeOf(err), Log: err.Error()}
}

// Commit writes the last finalized block's changes, height and app hash in
// one synced batch.
func (m *Machine) Commit() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	p := m.pending
	if p == nil {
		return errors.New("commit: no finalized block to commit")
	}
	hash, v, err := m.tree.SaveVersion()
	if err != nil {
		return fmt.Errorf("commit block %d: %w", p.height, err)
	}
	if v != p.height || !bytes.Equal(hash, p.appHash) {
		return fmt.Errorf("commit block %d: saved version %d with hash %X, finalized %X", p.height, v, hash, p.appHash)
	}
	committed, err := m.reads.GetImmutable(v)
	if err != nil {
		return fmt.Errorf("commit block %d: reopen committed state: %w", p.height, err)
	}
	m.previous = m.committed
	m.height, m.appHash, m.pending, m.committed, m.genesis = p.height, p.appHash, nil, committed, nil
	m.checkMu.Lock()
	m.pool, m.awaiting, m.awaited = mempool{}, nil, m.awaiting
	m.strikes.record(p.height, p.failed)
	m.checkMu.Unlock()
	return nil
}

// Close releases the database (when the machine opened it).
func (m *Machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.pending = nil
	if err := errors.Join(m.tree.Close(), m.reads.Close()); err != nil {
		return err
	}
	if m.ownsDB {
		return m.db.Close()
	}
	return nil
}

// Query answers a read at the last committed state; see chain/query.go for
// the paths. Errors are *chain.Error values.
func (m *Machine) Query(path string, data []byte) ([]byte, error) {
	m.mu.Lock()
	closed, r, height, hash := m.closed, m.committedReader(), m.height, m.appHash
	m.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if path == chain.QueryProven {
		return m.queryProven(data)
	}
	v, err := query(r, height, hash, path, data)
	if err != nil {
		return nil, errInternal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errInternal(err)
	}
	return b, nil
}

// committedReader reads the last committed state; the caller holds m.mu.
// Before the first block that is the genesis written by InitChain.
func (m *Machine) committedReader() reader {
	switch {
	case m.committed != nil:
		return treeReader{t: m.committed}
	case m.genesis != nil:
		return m.genesis
	}
	return emptyReader{}
}

// reader returns the committed state reader.
func (m *Machine) reader() reader {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.committedReader()
}

// stage puts the genesis (before block 1) and blk's writes into the tree's
// working version and returns its root hash, the block's app hash. A block
// that writes nothing keeps the previous app hash.
func (m *Machine) stage(blk *cache) ([]byte, error) {
	m.tree.Rollback()
	if m.genesis != nil {
		if err := m.genesis.applyTo(m.tree); err != nil {
			m.tree.Rollback()
			return nil, err
		}
	}
	if err := blk.applyTo(m.tree); err != nil {
		m.tree.Rollback()
		return nil, err
	}
	return m.tree.WorkingHash(), nil
}
