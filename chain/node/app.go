package node

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// AppVersion is the newest application protocol version, written into new
// genesis files (state.Version; the versions are listed in chain/state). A
// chain runs the version its genesis names: the node reports it to CometBFT
// and the machine keeps its rules, so this binary also runs and joins
// chains of older versions. Raise it when the state machine's rules change,
// keeping the older rules for the chains that run them.
const AppVersion = state.Version

// versioned is a Machine that knows which version of the rules its chain
// runs (0 before the genesis).
type versioned interface {
	AppVersion() (uint64, error)
}

// Codespace names Satchel's result codes in ABCI responses.
const Codespace = "satchel"

// App is the CometBFT application (ABCI 2.0) over a chain.Machine. It holds
// no state of its own: heights, app hashes and data all come from the
// machine, so a restarted node resumes where the machine left off and
// CometBFT replays only the blocks the machine has not committed.
//
// CometBFT calls an application from several connections (consensus,
// mempool, query, snapshot); App serialises every call to the machine with
// one mutex, so a Machine need not be safe for concurrent use.
type App struct {
	abci.BaseApplication

	mu      sync.Mutex
	m       chain.Machine
	log     *slog.Logger
	closed  bool
	pending int64        // height finalized, not yet committed
	height  atomic.Int64 // last committed height

	// decoded remembers transactions that passed CheckTx's stateless
	// checks (decoding, signature), so PrepareProposal and ProcessProposal
	// do not verify their signatures again.
	decoded decodedCache

	snaps snapshots
}

// maxDecoded bounds the decoded cache; it is emptied when full.
const maxDecoded = 1 << 16

// decodedCache is a set of transaction hashes that decode and verify.
type decodedCache struct {
	mu  sync.Mutex
	set map[[32]byte]struct{}
}

func (c *decodedCache) add(tx []byte) {
	h := sha256.Sum256(tx)
	c.mu.Lock()
	if c.set == nil || len(c.set) >= maxDecoded {
		c.set = make(map[[32]byte]struct{}, 1024)
	}
	c.set[h] = struct{}{}
	c.mu.Unlock()
}

// check reports whether tx decodes and its signature verifies, from the
// cache or by decoding it.
func (c *decodedCache) check(tx []byte) error {
	h := sha256.Sum256(tx)
	c.mu.Lock()
	_, ok := c.set[h]
	c.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := chain.DecodeTx(tx); err != nil {
		return err
	}
	c.add(tx)
	return nil
}

// errClosed answers calls that reach the application after its node stopped.
var errClosed = fmt.Errorf("%w: the data directory is closed", ErrStopped)

var _ abci.Application = (*App)(nil)

// NewApp returns the ABCI application over m. A nil log discards.
func NewApp(m chain.Machine, log *slog.Logger) *App {
	if log == nil {
		log = discardLogger()
	}
	return &App{m: m, log: log.With("component", "chain/app")}
}

// Info reports the machine's last committed height and app hash, which
// CometBFT compares with its block store to decide what to replay.
func (a *App) Info(_ context.Context, _ *abci.InfoRequest) (*abci.InfoResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	h, hash, err := a.m.Info()
	if err != nil {
		return nil, fmt.Errorf("machine info: %w", err)
	}
	a.height.Store(h)
	version := AppVersion
	if vm, ok := a.m.(versioned); ok {
		v, err := vm.AppVersion()
		if err != nil {
			return nil, fmt.Errorf("machine info: %w", err)
		}
		if v != 0 {
			version = v
		}
	}
	a.log.Debug("info", "height", h, "appHash", fmt.Sprintf("%X", hash), "appVersion", version)
	return &abci.InfoResponse{
		Data:             "satchel",
		Version:          "satchel/" + fmt.Sprint(AppVersion),
		AppVersion:       version,
		LastBlockHeight:  h,
		LastBlockAppHash: hash,
	}, nil
}

// InitChain decodes the genesis app state (the JSON of a chain.Genesis) and
// loads it into the machine.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	var g chain.Genesis
	if len(req.AppStateBytes) == 0 {
		return nil, errors.New("genesis has no app_state: the data directory needs its genesis (chain.Genesis JSON)")
	}
	if err := json.Unmarshal(req.AppStateBytes, &g); err != nil {
		return nil, fmt.Errorf("genesis app_state is not a chain.Genesis: %w", err)
	}
	vals, err := genesisValidators(req.Validators)
	if err != nil {
		return nil, err
	}
	g.Validators = vals
	// The rules are those of the version the network's genesis names; 0 (a
	// genesis that names none) is the newest, stated in the reply so that
	// CometBFT's headers carry it.
	g.AppVersion = req.GetConsensusParams().GetVersion().GetApp()
	if g.AppVersion == 0 {
		g.AppVersion = AppVersion
	}
	if g.ChainID != req.ChainId {
		return nil, fmt.Errorf("genesis app_state chainId %q differs from the network's chain_id %q; transactions sign the chain ID, so they must agree", g.ChainID, req.ChainId)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	hash, err := a.m.InitChain(g, req.Time)
	if err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	a.log.Debug("init chain", "chainID", req.ChainId, "appHash", fmt.Sprintf("%X", hash), "appVersion", g.AppVersion)
	// CometBFT took the version Info reported (this binary's newest, the
	// state being empty then) unless the reply names the genesis's.
	return &abci.InitChainResponse{AppHash: hash, ConsensusParams: &cmtproto.ConsensusParams{
		Version: &cmtproto.VersionParams{App: g.AppVersion},
	}}, nil
}

// CheckTx validates a transaction for the mempool. A rejected transaction
// carries its stable runtime error code and message.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	a.mu.Lock()
	err := errClosed
	if !a.closed {
		err = a.m.CheckTx(req.Tx)
	}
	a.mu.Unlock()
	if err != nil {
		return &abci.CheckTxResponse{Code: codeOf(err), Log: err.Error(), Codespace: Codespace}, nil
	}
	a.decoded.add(req.Tx)
	return &abci.CheckTxResponse{Code: abci.CodeTypeOK}, nil
}

// proposer is a Machine that judges a proposal by its own admission
// rules (state.Machine.ProposalTxs).
type proposer interface {
	ProposalTxs(txs [][]byte) [][]byte
}

// PrepareProposal proposes the mempool's transactions in order, leaving
// out any that ProcessProposal would refuse and, when the machine judges
// proposals (proposer), any its mempool admission would not admit into
// one block now, then as many as fit in MaxTxBytes: a prefix of what
// admission admits is admitted too.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	txs := make([][]byte, 0, len(req.Txs))
	seen := make(map[string]bool, len(req.Txs))
	for _, tx := range req.Txs {
		if a.decoded.check(tx) != nil || seen[string(tx)] {
			continue
		}
		seen[string(tx)] = true
		txs = append(txs, tx)
	}
	a.mu.Lock()
	if p, ok := a.m.(proposer); ok && !a.closed {
		txs = p.ProposalTxs(txs)
	}
	a.mu.Unlock()
	var size int64
	for i, tx := range txs {
		if size+int64(len(tx)) > req.MaxTxBytes {
			txs = txs[:i]
			break
		}
		size += int64(len(tx))
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

// proposalChecker is a Machine that holds proposals to the deterministic
// part of its admission rules from some app version on
// (state.Machine.CheckProposal).
type proposalChecker interface {
	CheckProposal(txs [][]byte) error
}

// ProcessProposal refuses a proposal with a transaction that can never
// execute — one that does not decode, is not canonical, or whose signature
// does not verify — or with the same transaction twice: an honest proposer
// (PrepareProposal) never makes one. From state.VersionAdmission on it
// also refuses one that breaks the machine's admission rules judged on
// committed state (proposalChecker), which every validator of that
// version judges alike and an honest proposer keeps. What depends on the
// block's own execution is left to FinalizeBlock, which records a failing
// transaction as failed and keeps the block valid.
func (a *App) ProcessProposal(_ context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	reject := &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}
	seen := make(map[string]bool, len(req.Txs))
	for i, tx := range req.Txs {
		if err := a.decoded.check(tx); err != nil {
			a.log.Warn("refused proposal", "height", req.Height, "tx", i, "err", err)
			return reject, nil
		}
		if seen[string(tx)] {
			a.log.Warn("refused proposal", "height", req.Height, "tx", i, "err", "duplicate transaction")
			return reject, nil
		}
		seen[string(tx)] = true
	}
	a.mu.Lock()
	var err error
	if c, ok := a.m.(proposalChecker); ok && !a.closed {
		err = c.CheckProposal(req.Txs)
	}
	a.mu.Unlock()
	if err != nil {
		a.log.Warn("refused proposal", "height", req.Height, "err", err)
		return reject, nil
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// FinalizeBlock executes the decided block on the machine and returns one
// result per transaction, carrying the typed chain events as ABCI events.
// A block that ends with an app version upgrade (chain.Upgrader) returns
// the new version as a consensus params update (Version.App), which
// CometBFT applies from the next block.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	b := chain.BlockInfo{Height: req.Height, Time: req.Time, Hash: req.Hash}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, errClosed
	}
	results, hash, err := a.m.FinalizeBlock(b, req.Txs)
	var blockEvents []chain.Event
	var upgradedTo uint64
	if eb, ok := a.m.(chain.EndBlocker); ok && err == nil {
		blockEvents = eb.EndBlockEvents()
	}
	if up, ok := a.m.(chain.Upgrader); ok && err == nil {
		upgradedTo = up.UpgradedTo()
	}
	a.pending = req.Height
	a.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	if len(results) != len(req.Txs) {
		return nil, fmt.Errorf("finalize block %d: machine returned %d results for %d transactions",
			req.Height, len(results), len(req.Txs))
	}
	out := make([]*abci.ExecTxResult, len(results))
	for i, r := range results {
		evs, err := encodeEvents(r.Events)
		if err != nil {
			return nil, fmt.Errorf("finalize block %d tx %d: %w", req.Height, i, err)
		}
		res := &abci.ExecTxResult{Code: r.Code, Log: r.Log, Events: evs}
		if r.Code != chain.CodeOK {
			res.Codespace = Codespace
		}
		out[i] = res
	}
	updates, err := validatorUpdates(results)
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	a.log.Debug("finalize block", "height", req.Height, "txs", len(req.Txs), "appHash", fmt.Sprintf("%X", hash))
	evs, err := encodeEvents(blockEvents)
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	res := &abci.FinalizeBlockResponse{TxResults: out, AppHash: hash, Events: evs, ValidatorUpdates: updates}
	if upgradedTo != 0 {
		// The block ended with the migration to a newer app version:
		// CometBFT puts it in the next block's header, and from then on
		// every node checks headers against it.
		res.ConsensusParamUpdates = &cmtproto.ConsensusParams{Version: &cmtproto.VersionParams{App: upgradedTo}}
		a.log.Info("app version upgraded", "height", req.Height, "appVersion", upgradedTo)
	}
	return res, nil
}

// Commit makes the finalized block durable in the machine. Blocks are never
// pruned (RetainHeight 0): followers read events of any height.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if err := a.m.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	a.height.Store(a.pending)
	if sn, ok := a.m.(snapshotter); ok {
		a.snaps.maybeTake(sn, a.pending, a.log)
	}
	return &abci.CommitResponse{RetainHeight: 0}, nil
}

// Query answers a read at the last committed state. A machine error becomes
// its stable code with the message in Log.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	a.mu.Lock()
	v, err := []byte(nil), error(errClosed)
	h := a.height.Load()
	switch {
	case a.closed:
	case req.Height != 0 && req.Height != h:
		// The machine keeps only the latest state; answering an old
		// height with it would be silently wrong.
		err = chain.Errorf(chain.ErrInvalid, "query at height %d: this node answers only the latest height (%d); query with height 0", req.Height, h)
	default:
		v, err = a.m.Query(req.Path, req.Data)
	}
	a.mu.Unlock()
	if err != nil {
		return &abci.QueryResponse{Code: codeOf(err), Log: err.Error(), Codespace: Codespace, Height: h}, nil
	}
	return &abci.QueryResponse{Code: abci.CodeTypeOK, Key: req.Data, Value: v, Height: h}, nil
}

// codeOf maps a machine error to a non-zero ABCI code.
func codeOf(err error) uint32 {
	c := chain.CodeOf(err)
	if c == chain.CodeOK {
		c = chain.CodeInternal
	}
	return c
}

// committedHeight is the last height the machine committed.
func (a *App) committedHeight() int64 { return a.height.Load() }

// close closes the machine; later calls fail with ErrStopped.
func (a *App) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.snaps.wg.Wait()
	return a.m.Close()
}
