package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// validatorPower is the voting power of the validator of a new network.
const validatorPower = 10

// Node is an embedded CometBFT node running the data directory: by default
// the one validator of a new network, or a full node of an existing one
// (see WithGenesisDoc and WithPersistentPeers).
//
// Its home holds CometBFT's layout: config/ (genesis.json, node_key.json,
// priv_validator_key.json) and data/ (block store, state, WAL, and app/, the
// machine's goleveldb state). Configuration is made in code from options on
// every start; no config.toml is read.
//
// A Node runs once: Start, then Stop. To restart, make a new Node on the
// same home; it resumes at the height where it stopped.
type Node struct {
	home    string
	o       options
	cfg     *cmtcfg.Config
	nodeKey *p2p.NodeKey
	pv      *privval.FilePV
	gen     *cmttypes.GenesisDoc
	log     *slog.Logger

	stopping atomic.Bool // quiets CometBFT's shutdown errors

	mu  sync.Mutex
	run runState
	app *App
	cmt *nm.Node
	rpc *local.Local
	f   *follower
}

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateStopped
)

// New prepares a node in home, creating on first use its node key, its
// validator key and, from WithGenesis or WithGenesisDoc, its genesis file.
// It does not start the node.
func New(home string, opts ...Option) (*Node, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if home == "" {
		return nil, errors.New("chain node: empty home directory")
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("chain node home: %w", err)
	}
	if o.blockInterval < 0 || o.emptyBlocks < 0 {
		return nil, errors.New("chain node: block intervals must not be negative")
	}
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return nil, fmt.Errorf("chain node home: %w", err)
		}
	}
	cfg, err := makeConfig(home, o)
	if err != nil {
		return nil, err
	}
	n := &Node{home: home, o: o, cfg: cfg, log: o.log.With("component", "chain/node")}
	if n.nodeKey, err = p2p.LoadOrGenNodeKey(cfg.NodeKeyFile()); err != nil {
		return nil, fmt.Errorf("chain node key %s: %w", cfg.NodeKeyFile(), err)
	}
	n.pv, err = privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile(),
		func() (crypto.PrivKey, error) { return ed25519.GenPrivKey(), nil })
	if err != nil {
		return nil, fmt.Errorf("chain validator key %s: %w", cfg.PrivValidatorKeyFile(), err)
	}
	if n.gen, err = n.ensureGenesis(); err != nil {
		return nil, err
	}
	return n, nil
}

// makeConfig is the CometBFT configuration, made in code.
func makeConfig(home string, o options) (*cmtcfg.Config, error) {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = "satchel"
	cfg.ProxyApp = "" // the application is in process

	if o.rpcAddr != "" {
		addr, err := listenAddr("RPC", o.rpcAddr)
		if err != nil {
			return nil, err
		}
		cfg.RPC.ListenAddress = addr
	} else {
		cfg.RPC.ListenAddress = ""
	}
	cfg.RPC.PprofListenAddress = ""
	addr, err := listenAddr("P2P", o.p2pAddr)
	if err != nil {
		return nil, err
	}
	cfg.P2P.ListenAddress = addr
	cfg.P2P.AddrBookStrict = false  // peers on loopback and private networks
	cfg.P2P.AllowDuplicateIP = true // several nodes on one host
	for _, p := range o.peers {
		if _, err := p2p.NewNetAddressString(p); err != nil {
			return nil, fmt.Errorf("chain node peer %q: want ID@HOST:PORT (another node's P2PAddress): %w", p, err)
		}
	}
	cfg.P2P.PersistentPeers = strings.Join(o.peers, ",")
	if o.localPeers {
		cfg.P2P.FlushThrottleTimeout = localFlushThrottle
		cfg.P2P.SendRate, cfg.P2P.RecvRate = localPeerRate, localPeerRate
	}

	// Blocks: timeout_commit paces blocks while there are transactions; an
	// idle chain waits for a transaction (proposed at once) or for the empty
	// block interval.
	cfg.Consensus.TimeoutCommit = o.blockInterval
	cfg.Consensus.CreateEmptyBlocks = true
	cfg.Consensus.CreateEmptyBlocksInterval = o.emptyBlocks
	// Peers gossip block parts and votes, sleeping this long when there is
	// nothing to send. CometBFT's default (100 ms, made for 1 s blocks) lets
	// full nodes fall further behind with every 100 ms block.
	cfg.Consensus.PeerGossipSleepDuration = gossipSleep(o.blockInterval)
	if o.roundTimeout > 0 {
		cfg.Consensus.TimeoutPropose = o.roundTimeout
		cfg.Consensus.TimeoutProposeDelta = o.roundTimeout / 6
		cfg.Consensus.TimeoutPrevote = o.roundTimeout / 3
		cfg.Consensus.TimeoutPrevoteDelta = o.roundTimeout / 6
		cfg.Consensus.TimeoutPrecommit = o.roundTimeout / 3
		cfg.Consensus.TimeoutPrecommitDelta = o.roundTimeout / 6
	}

	if ss := o.stateSync; ss != nil {
		cfg.StateSync.Enable = true
		cfg.StateSync.RPCServers = ss.RPCServers
		if len(ss.RPCServers) == 1 {
			// CometBFT wants a witness besides the primary; with one
			// server the light client checks it against itself.
			cfg.StateSync.RPCServers = []string{ss.RPCServers[0], ss.RPCServers[0]}
		}
		cfg.StateSync.TrustHeight = ss.TrustHeight
		cfg.StateSync.TrustHash = hex.EncodeToString(ss.TrustHash)
		cfg.StateSync.DiscoveryTime = 5 * time.Second
	}
	cfg.Instrumentation.Prometheus = false
	cfg.Storage.DiscardABCIResponses = false // BlockEvents reads them
	// No transaction index: transports find transactions in blocks, and
	// CometBFT v1.0.1 never closes the kv index's database, so a node could
	// not be restarted in the same process.
	cfg.TxIndex.Indexer = "null"
	if err := cfg.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("chain node config: %w", err)
	}
	return cfg, nil
}

// The peer-to-peer settings of WithLocalPeers.
const (
	localFlushThrottle = time.Millisecond
	localPeerRate      = 1 << 30 // bytes/s: no limit that loopback reaches
)

// gossipSleep is a tenth of the block interval, between 5 and 100 ms.
func gossipSleep(blockInterval time.Duration) time.Duration {
	return min(max(blockInterval/10, 5*time.Millisecond), 100*time.Millisecond)
}

// listenAddr turns host:port (or tcp://host:port) into CometBFT's form.
func listenAddr(what, addr string) (string, error) {
	a := strings.TrimPrefix(addr, "tcp://")
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", fmt.Errorf("chain node %s address %q: want host:port: %w", what, addr, err)
	}
	return "tcp://" + a, nil
}

// ensureGenesis loads, copies or creates the genesis file.
func (n *Node) ensureGenesis() (*cmttypes.GenesisDoc, error) {
	path := n.cfg.GenesisFile()
	existing, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chain genesis: %w", err)
	}
	switch {
	case n.o.genesisDoc != "":
		b, err := os.ReadFile(n.o.genesisDoc)
		if err != nil {
			return nil, fmt.Errorf("chain genesis to join: %w", err)
		}
		gen, err := cmttypes.GenesisDocFromJSON(b)
		if err != nil {
			return nil, fmt.Errorf("chain genesis to join %s: %w", n.o.genesisDoc, err)
		}
		if existing != nil {
			if !bytes.Equal(existing, b) {
				return nil, fmt.Errorf("chain home %s already has the genesis of another network (%s); use an empty home to join %s",
					n.home, path, gen.ChainID)
			}
			return gen, nil
		}
		if err := fsutil.WriteFileAtomic(path, b, 0o644); err != nil {
			return nil, fmt.Errorf("chain genesis: %w", err)
		}
		n.log.Info("joined network", "chainID", gen.ChainID, "genesis", path)
		return gen, nil
	case existing != nil:
		gen, err := cmttypes.GenesisDocFromJSON(existing)
		if err != nil {
			return nil, fmt.Errorf("chain genesis %s: %w", path, err)
		}
		return gen, nil
	case n.o.genesis != nil:
		gen, err := n.newGenesis(*n.o.genesis)
		if err != nil {
			return nil, err
		}
		if err := gen.SaveAs(path); err != nil {
			return nil, fmt.Errorf("chain genesis: %w", err)
		}
		n.log.Info("created network", "chainID", gen.ChainID, "genesis", path)
		return gen, nil
	default:
		return nil, fmt.Errorf("chain home %s has no genesis: start a new network with WithGenesis or join one with WithGenesisDoc", n.home)
	}
}

// newGenesis makes the genesis of a new network whose one validator is this
// node and whose app state is g.
func (n *Node) newGenesis(g chain.Genesis) (*cmttypes.GenesisDoc, error) {
	if g.ChainID == "" {
		g.ChainID = chain.DefaultChainID
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	appState, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("chain genesis: %w", err)
	}
	pub, err := n.pv.GetPubKey()
	if err != nil {
		return nil, fmt.Errorf("chain validator key: %w", err)
	}
	params := cmttypes.DefaultConsensusParams()
	params.Version.App = AppVersion
	gen := &cmttypes.GenesisDoc{
		GenesisTime:     cmttime.Now(),
		ChainID:         g.ChainID,
		InitialHeight:   1,
		ConsensusParams: params,
		Validators: []cmttypes.GenesisValidator{{
			Address: pub.Address(), PubKey: pub, Power: validatorPower, Name: "satchel",
		}},
		AppState: appState,
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("chain genesis: %w", err)
	}
	return gen, nil
}

// Start runs the node: it opens the machine, replays whatever blocks the
// machine has not committed, and joins consensus. ctx bounds the startup
// only; the node runs until Stop.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.run {
	case stateRunning:
		return errors.New("chain node already running")
	case stateStopped:
		return errors.New("chain node was stopped; make a new Node on the same home to restart")
	}
	m := n.o.machine
	if m == nil {
		var err error
		if m, err = openMachine(MachineDir(n.home), n.o.log); err != nil {
			return err
		}
	}
	app := NewApp(m, n.o.log)
	app.snaps.interval = n.o.snapshots
	store, err := openSnapshotStore(filepath.Join(n.home, SnapshotsDir), keepSnapshots, n.log)
	if err != nil {
		app.close()
		return err
	}
	app.snaps.store = store
	cmtNode, err := nm.NewNode(ctx, n.cfg, n.pv, n.nodeKey,
		proxy.NewConnSyncLocalClientCreator(app),
		nm.DefaultGenesisDocProviderFunc(n.cfg),
		dbProvider(n.o.log),
		nm.DefaultMetricsProvider(n.cfg.Instrumentation),
		newCmtLogger(n.o.log, &n.stopping),
	)
	if err != nil {
		app.close()
		return fmt.Errorf("chain node: %w", err)
	}
	rpc := local.New(cmtNode)
	pool, _ := cmtNode.Mempool().(txPool)
	f, err := startFollower(cmtNode.EventBus(), rpc, pool, cmtNode.BlockStore().Height, app.committedHeight(), n.log)
	if err != nil {
		n.stopping.Store(true)
		cmtNode.OnStop()
		_ = cmtNode.ProxyApp().Stop()
		app.close()
		return fmt.Errorf("chain node: %w", err)
	}
	if err := cmtNode.Start(); err != nil {
		f.stop()
		n.stopping.Store(true)
		cmtNode.OnStop() // Start does not undo a partial start
		_ = cmtNode.ProxyApp().Stop()
		app.close()
		return fmt.Errorf("chain node: %w", err)
	}
	n.app, n.cmt, n.rpc, n.f = app, cmtNode, rpc, f
	n.run = stateRunning
	n.log.Info("chain node started", "chainID", n.gen.ChainID, "height", app.committedHeight(),
		"validator", n.IsValidator(), "p2p", n.P2PAddress(), "rpc", n.RPCAddress())
	return nil
}

// Stop stops the node and closes its machine. Pending BroadcastTx and
// WaitForHeight calls of its transports return ErrStopped.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.run != stateRunning {
		n.run = stateStopped
		return nil
	}
	n.run = stateStopped
	n.stopping.Store(true)
	n.f.stop()
	var errs []error
	if err := n.cmt.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop consensus: %w", err))
	}
	n.cmt.Wait()
	if err := n.cmt.ProxyApp().Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop app connections: %w", err))
	}
	if err := n.app.close(); err != nil {
		errs = append(errs, fmt.Errorf("close machine: %w", err))
	}
	n.log.Info("chain node stopped", "height", n.app.committedHeight())
	return errors.Join(errs...)
}

// Transport returns the in-process transport of the running node, for
// chain.NewClient. It waits for commits through the node's event bus, with
// no polling; a transaction that leaves the mempool uncommitted fails with
// ErrDropped. It fails with ErrStopped once the node stops.
func (n *Node) Transport() chain.Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.run != stateRunning {
		return stoppedTransport{}
	}
	return &localTransport{Conn: rpc.Conn{C: n.rpc, InvalidTx: invalidTx}, f: n.f}
}

// Home returns the node's home directory.
func (n *Node) Home() string { return n.home }

// ChainID returns the network's chain ID.
func (n *Node) ChainID() string { return n.gen.ChainID }

// GenesisFile returns the path of the CometBFT genesis file: give it to
// nodes that join the network (WithGenesisDoc).
func (n *Node) GenesisFile() string { return n.cfg.GenesisFile() }

// NodeID returns the node's peer-to-peer ID.
func (n *Node) NodeID() string { return string(n.nodeKey.ID()) }

// P2PAddress returns "id@host:port", the address other nodes name in
// WithPersistentPeers.
func (n *Node) P2PAddress() string {
	return p2p.IDAddressString(n.nodeKey.ID(), strings.TrimPrefix(n.cfg.P2P.ListenAddress, "tcp://"))
}

// RPCAddress returns the URL of the node's CometBFT RPC (for Dial), or ""
// when the RPC server is off.
func (n *Node) RPCAddress() string {
	if n.cfg.RPC.ListenAddress == "" {
		return ""
	}
	return "http://" + strings.TrimPrefix(n.cfg.RPC.ListenAddress, "tcp://")
}

// IsValidator reports whether the node's validator key is in the genesis
// validator set.
func (n *Node) IsValidator() bool {
	addr := n.pv.Key.Address
	for _, v := range n.gen.Validators {
		if bytes.Equal(v.Address, addr) {
			return true
		}
	}
	return false
}

// Status is what a node reports about itself.
type Status struct {
	NodeID    string    `json:"nodeId"`
	ChainID   string    `json:"chainId"`
	Height    int64     `json:"height"`
	AppHash   string    `json:"appHash"` // hex, after the block at Height
	BlockTime time.Time `json:"blockTime"`
	// LatestBlockHeight and LatestBlockHash name the latest block in the
	// node's store: what a joining node trusts for state sync.
	LatestBlockHeight int64  `json:"latestBlockHeight"`
	LatestBlockHash   string `json:"latestBlockHash"`
	CatchingUp        bool   `json:"catchingUp"`
	Validator         bool   `json:"validator"`
	P2PAddress        string `json:"p2pAddress"`
	// AppVersion is the version of the rules the chain runs after the
	// block at Height (see chain.MsgUpgradeAppVersion), and Upgrade the
	// upgrade scheduled, if any.
	AppVersion uint64             `json:"appVersion"`
	Upgrade    *chain.UpgradePlan `json:"upgrade,omitempty"`
}

// Status returns the running node's status.
func (n *Node) Status(ctx context.Context) (Status, error) {
	n.mu.Lock()
	rpc, running := n.rpc, n.run == stateRunning
	n.mu.Unlock()
	if !running {
		return Status{}, ErrStopped
	}
	return status(ctx, rpc)
}

// FetchStatus returns the status of the node whose RPC listens at rpcURL.
func FetchStatus(ctx context.Context, rpcURL string) (Status, error) {
	c, hc, err := rpc.DialHTTP(rpcURL)
	if err != nil {
		return Status{}, err
	}
	defer hc.CloseIdleConnections()
	return status(ctx, c)
}

type statusClient interface {
	Status(context.Context) (*coretypes.ResultStatus, error)
	ABCIInfo(context.Context) (*coretypes.ResultABCIInfo, error)
	ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*coretypes.ResultABCIQuery, error)
}

func status(ctx context.Context, c statusClient) (Status, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("chain node status: %w", err)
	}
	info, err := c.ABCIInfo(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("chain node info: %w", err)
	}
	// The scheduled upgrade; a node older than upgrades knows of none.
	var plan *chain.UpgradePlan
	if q, err := c.ABCIQuery(ctx, chain.QueryAppVersion, nil); err == nil && q.Response.Code == 0 {
		var v chain.AppVersionInfo
		if json.Unmarshal(q.Response.Value, &v) == nil {
			plan = v.Upgrade
		}
	}
	return Status{
		NodeID:            string(st.NodeInfo.DefaultNodeID),
		ChainID:           st.NodeInfo.Network,
		Height:            info.Response.LastBlockHeight,
		AppHash:           fmt.Sprintf("%X", info.Response.LastBlockAppHash),
		BlockTime:         st.SyncInfo.LatestBlockTime,
		LatestBlockHeight: st.SyncInfo.LatestBlockHeight,
		LatestBlockHash:   st.SyncInfo.LatestBlockHash.String(),
		CatchingUp:        st.SyncInfo.CatchingUp,
		AppVersion:        info.Response.AppVersion,
		Upgrade:           plan,
		Validator:         st.ValidatorInfo.VotingPower > 0,
		P2PAddress:        p2p.IDAddressString(st.NodeInfo.DefaultNodeID, strings.TrimPrefix(st.NodeInfo.ListenAddr, "tcp://")),
	}, nil
}

// GenesisPath returns where a node in home keeps its genesis file.
func GenesisPath(home string) string { return filepath.Join(home, "config", "genesis.json") }

// stoppedTransport is the Transport of a node that is not running.
type stoppedTransport struct{}

func (stoppedTransport) Query(context.Context, string, []byte) ([]byte, error) {
	return nil, ErrStopped
}
func (stoppedTransport) BroadcastTx(context.Context, []byte) (chain.Committed, error) {
	return chain.Committed{}, ErrStopped
}
func (stoppedTransport) BlockEvents(context.Context, int64) (chain.BlockEvents, error) {
	return chain.BlockEvents{}, ErrStopped
}
func (stoppedTransport) LatestHeight(context.Context) (int64, error) { return 0, ErrStopped }
func (stoppedTransport) WaitForHeight(context.Context, int64) error  { return ErrStopped }
func (stoppedTransport) Close() error                                { return nil }

// MachineDir returns where a node in home keeps the default machine's
// database (see WithMachine).
func MachineDir(home string) string { return filepath.Join(home, "data", "app") }
