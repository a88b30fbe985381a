package node

import (
	"log/slog"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// Defaults of a Node.
const (
	// DefaultRPCAddr is where the CometBFT RPC listens: loopback only.
	DefaultRPCAddr = "127.0.0.1:26657"
	// DefaultP2PAddr is where CometBFT's peer-to-peer layer listens:
	// loopback only; a multi-validator network sets a routable address.
	DefaultP2PAddr = "127.0.0.1:26656"
	// DefaultBlockInterval is the pause after each committed block
	// (CometBFT's timeout_commit): blocks follow each other at this interval
	// while there are transactions.
	DefaultBlockInterval = 100 * time.Millisecond
	// DefaultEmptyBlockInterval is how often an idle chain makes an empty
	// block. A transaction arriving at an idle chain is proposed at once.
	DefaultEmptyBlockInterval = 1 * time.Second
)

// Option configures a Node.
type Option func(*options)

type options struct {
	genesis       *chain.Genesis
	genesisDoc    string
	log           *slog.Logger
	rpcAddr       string
	p2pAddr       string
	peers         []string
	blockInterval time.Duration
	emptyBlocks   time.Duration
	machine       chain.Machine
	roundTimeout  time.Duration
	snapshots     int64
	stateSync     *StateSync
	localPeers    bool
}

// StateSync is where a joining node's state sync starts: two or more RPC
// URLs of nodes of the network (their light blocks are cross-checked) and
// a header the operator trusts (height and hash, e.g. from its own
// validator's `satchel chain status`).
type StateSync struct {
	RPCServers  []string
	TrustHeight int64
	TrustHash   []byte
}

func defaultOptions() options {
	return options{
		log:           discardLogger(),
		rpcAddr:       DefaultRPCAddr,
		p2pAddr:       DefaultP2PAddr,
		blockInterval: DefaultBlockInterval,
		emptyBlocks:   DefaultEmptyBlockInterval,
	}
}

// WithGenesis sets the data directory's genesis for a new network: when the
// home has no genesis file yet, New writes one whose app_state is g, whose
// chain ID is g.ChainID and whose one validator is this node. A home that
// already has a genesis file keeps it and ignores g.
func WithGenesis(g chain.Genesis) Option {
	return func(o *options) { o.genesis = &g }
}

// WithGenesisDoc joins an existing network: the CometBFT genesis file at
// path (another node's GenesisFile) is copied into the home, and the node
// runs as a full node unless the genesis names its validator key. A home
// that already has a different genesis is an error.
func WithGenesisDoc(path string) Option {
	return func(o *options) { o.genesisDoc = path }
}

// WithLogger sets the logger. CometBFT's own messages are logged at Debug
// (and below) with component=cometbft. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithRPCAddr sets the host:port the CometBFT RPC listens on (default
// DefaultRPCAddr). An empty address turns the RPC server off; the node's
// in-process Transport does not need it.
func WithRPCAddr(addr string) Option {
	return func(o *options) { o.rpcAddr = addr }
}

// WithP2PAddr sets the host:port the peer-to-peer layer listens on (default
// DefaultP2PAddr). Port 0 takes any free port, for a node no other node
// dials: P2PAddress then still names port 0.
func WithP2PAddr(addr string) Option {
	return func(o *options) { o.p2pAddr = addr }
}

// WithPersistentPeers names peers to stay connected to, each "id@host:port"
// as returned by another node's P2PAddress.
func WithPersistentPeers(peers ...string) Option {
	return func(o *options) { o.peers = append(o.peers, peers...) }
}

// WithBlockInterval sets the pause after each block (default
// DefaultBlockInterval). Every validator of a network should use the same.
func WithBlockInterval(d time.Duration) Option {
	return func(o *options) { o.blockInterval = d }
}

// WithEmptyBlockInterval sets how often an idle chain makes an empty block
// (default DefaultEmptyBlockInterval). Zero makes a block every block
// interval whether or not there are transactions.
func WithEmptyBlockInterval(d time.Duration) Option {
	return func(o *options) { o.emptyBlocks = d }
}

// WithRoundTimeout sets how long a validator waits for a proposal and for
// votes before it moves to the next round (CometBFT's timeout_propose; the
// vote timeouts are a third of it). It bounds the pause when a proposer is
// down. The default is CometBFT's (3 s propose, 1 s votes), made for
// validators across the internet; validators on one host can use less.
func WithRoundTimeout(d time.Duration) Option {
	return func(o *options) { o.roundTimeout = d }
}

// WithLocalPeers tunes the peer-to-peer layer for validators on one host
// (a devnet, tests): messages are flushed to peers after 1 ms instead of
// CometBFT's 10 ms, which every consensus step (proposal, prevotes,
// precommits) waits for on every hop, and the per-peer send and receive
// rates are not limited (CometBFT's default is 5 MB/s, sized for peers
// across the internet). Validators on separate machines keep CometBFT's
// defaults: larger batches, and no peer floods another's link.
func WithLocalPeers() Option {
	return func(o *options) { o.localPeers = true }
}

// WithSnapshotInterval makes the node write a snapshot of its state every n
// blocks to disk under its home (SnapshotsDir; the last four are kept,
// older ones deleted) and offer them to nodes that join by state sync. 0
// (the default) takes none; a node still offers the snapshots it kept
// before a restart.
func WithSnapshotInterval(n int64) Option {
	return func(o *options) { o.snapshots = n }
}

// WithStateSync makes a node with an empty data directory join by state
// sync: it restores a snapshot offered by its peers (checked against the
// app hash the light client verifies from the trusted header) instead of
// replaying every block, then follows blocks as usual. A node that has
// state ignores it.
func WithStateSync(s StateSync) Option {
	return func(o *options) { o.stateSync = &s }
}

// WithMachine sets the state machine the node drives. The node closes it on
// Stop (or when Start fails). The default is the goleveldb-backed machine of package chain/state
// in home/data/app.
func WithMachine(m chain.Machine) Option {
	return func(o *options) { o.machine = m }
}
