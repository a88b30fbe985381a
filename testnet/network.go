// Package testnet runs a whole Satchel storage network in one process: the
// embedded chain (one CometBFT validator), storage providers that each
// operate one bucket, and the chain setup that wires them — storage
// workers, buckets, accepted invitations, a dynamic bag policy that places
// every channel in all the buckets, a member and its channel, whose bag is
// the network's bag. Everything listens on loopback ports the OS picks.
//
// Start is the core, used by `satchel devnet` as well as by tests: it keeps
// every piece of state in one directory, so starting again on the same
// directory resumes the same network (same keys, chain, buckets, bag,
// stored data).
//
//	net, err := testnet.Start(ctx, dir, testnet.Config{Providers: 3})
//	...
//	defer net.Close()
//	obj, err := net.Upload(ctx, data, 0) // push to provider 0 only
//	net.Provider(1).Kill()
//
// Tests use New, which runs Start in a temporary directory and closes the
// network when the test ends:
//
//	net := testnet.New(t, testnet.Providers(3))
//
// Layout of a network directory:
//
//	network.json        what the one-time chain setup created (IDs of workers, buckets, member, channel, bag)
//	keys/<name>.key     storage-lead, distribution-lead, member, provider-<i> (see Network.KeyFile)
//	chain/              the chain node's home
//	provider-<i>/       identity.key, provider-state.json, blocks/ (the block store)
//
// The setup registers and deletes one object first, so the network's
// objects start at ID 1: the store protocol reads object_id 0 as "a
// streamed upload not registered yet".
package testnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/topics"
)

// Config configures a network made by Start.
type Config struct {
	// Providers is the number of storage providers (and buckets), at
	// least 1; the default is 3.
	Providers int
	// ChainRPCAddr is where the chain's CometBFT RPC listens, for commands
	// run against the network (e.g. "127.0.0.1:26657"). Empty turns the RPC
	// off: the network's own parts use the in-process transport.
	ChainRPCAddr string
	// Validators is the number of chain validators, each a node in this
	// process (default 1); above 1 the network keeps going with fewer than
	// a third of them stopped (Network.StopValidator).
	Validators int
	// BlockInterval is the chain's pause after each block (default
	// node.DefaultBlockInterval).
	BlockInterval time.Duration
	// Logger receives the logs of every part; the default discards them.
	Logger *slog.Logger
	// SessionGrace is how long a provider keeps a streamed upload session
	// orphaned by a lost uploader (provider.WithOrphanedSessionGrace), and
	// roughly how often its store expires sessions; the default is one
	// second, so a network settles within a test.
	SessionGrace time.Duration
	// ProviderOptions are added to every provider's provider.New options,
	// after the network's own.
	ProviderOptions []provider.Option
	// ProviderOptionsFor returns options for provider i alone, added last.
	ProviderOptionsFor func(i int) []provider.Option
	// ProviderListenAddrs returns the libp2p listen addresses of provider i
	// (default: TCP on a free loopback port).
	ProviderListenAddrs func(i int) []string
	// StatusAddrs returns the status server address of provider i (default:
	// none). "127.0.0.1:0" takes a free port.
	StatusAddrs func(i int) string
	// Contracts makes every provider answer storage contract proposals on
	// ContractTopics (default DefaultContractTopics); see testnet/contracts.go.
	Contracts bool
	// ContractTopics are the contract topics providers subscribe to; set,
	// they turn Contracts on.
	ContractTopics []topics.Topic
	// HostOptions returns options added to provider i's p2p.New call (a
	// connection gater, memory limits), for fault injection.
	HostOptions func(i int) []p2p.Option
	// ChainTransport, when set, wraps the chain transport provider i talks
	// to the chain through (its own chain.Client), for fault injection: a
	// transport that fails, lags or lies.
	ChainTransport func(i int, t chain.Transport) chain.Transport
	// DeletionGrace is how long providers keep an object the chain deleted
	// (provider.WithDeletionGrace); the default, zero, removes it at the
	// first reconcile after the deletion is confirmed, so a network settles
	// within a test.
	DeletionGrace time.Duration
}

// Network is a running chain and its storage providers.
type Network struct {
	// Dir holds the network's state.
	Dir string
	// Chain is the embedded chain node; Client talks to it in process.
	Chain  *node.Node
	Client *chain.Client
	// StorageLead and DistributionLead sign governance transactions.
	StorageLead      chain.Key
	DistributionLead chain.Key
	// Member controls MemberID, which owns Channel and its bag Bag: the key
	// that registers and deletes the bag's objects.
	Member   chain.Key
	MemberID chain.MemberID
	Channel  chain.ChannelID
	Bag      chain.BagID

	cfg        Config
	log        *slog.Logger
	validators []*node.Node
	providers  []*Provider
	closeOnce  sync.Once

	clientMu sync.Mutex
	client   *p2p.Host
	renters  []renterHost

	distMu       sync.Mutex
	distributors []*Distributor
}

// Provider is one storage provider of a network: its chain identity, its
// directory and, while it runs, its host, block store and server.
type Provider struct {
	// Index is the provider's position in the network.
	Index int
	// Worker and Bucket are its chain identity; Key is the worker's role
	// account, which is also its transactor.
	Worker chain.WorkerID
	Bucket chain.StorageBucketID
	Key    chain.Key
	// Dir holds its identity key, state and block store.
	Dir string

	net *Network

	mu        sync.Mutex
	host      *p2p.Host
	store     *blockstore.Store
	server    *provider.Server
	registry  *prometheus.Registry
	contracts *providerContracts
	hostOpts  []p2p.Option // added by LimitFetchBudget, kept across restarts
}

// Start starts, in dir, the chain and cfg.Providers storage providers,
// creating on first use the keys, the chain and its setup, and resuming
// them on later starts. It returns once the providers are connected to
// each other and have published their addresses on chain. ctx bounds the
// start only; the network runs until Close.
func Start(ctx context.Context, dir string, cfg Config) (_ *Network, err error) {
	if cfg.Providers == 0 {
		cfg.Providers = 3
	}
	if cfg.Providers < 1 {
		return nil, fmt.Errorf("testnet: %d providers: need at least one, which the channel's bag is placed in", cfg.Providers)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	prev, resumed, err := readSetup(dir)
	if err != nil {
		return nil, err
	}
	if resumed && prev.Providers != cfg.Providers {
		return nil, fmt.Errorf("testnet: %s holds a network of %d providers, not %d; start it with %d or use another directory", dir, prev.Providers, cfg.Providers, prev.Providers)
	}
	k, err := loadKeys(dir, cfg.Providers)
	if err != nil {
		return nil, fmt.Errorf("testnet: keys: %w", err)
	}
	n := &Network{
		Dir:              dir,
		StorageLead:      k.storageLead,
		DistributionLead: k.distributionLead,
		Member:           k.member,
		cfg:              cfg,
		log:              cfg.Logger.With("component", "testnet"),
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	chainHome := filepath.Join(dir, "chain")
	if !resumed {
		// A chain without a recorded setup is a setup that did not finish:
		// start it over.
		if err := os.RemoveAll(chainHome); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
	}
	opts := []node.Option{
		node.WithGenesis(chain.DefaultGenesis(k.storageLead.Account(), k.distributionLead.Account())),
		node.WithRPCAddr(cfg.ChainRPCAddr),
		node.WithP2PAddr("127.0.0.1:0"),
		node.WithLogger(cfg.Logger.With("component", "chain")),
	}
	if cfg.BlockInterval > 0 {
		opts = append(opts, node.WithBlockInterval(cfg.BlockInterval))
	}
	if cfg.Validators > 1 {
		g := chain.DefaultGenesis(k.storageLead.Account(), k.distributionLead.Account())
		if n.validators, err = startValidators(ctx, chainHome, cfg, g); err != nil {
			return nil, err
		}
		n.Chain = n.validators[0]
	} else {
		if _, err := os.Stat(filepath.Join(chainHome, "validator-0")); err == nil {
			return nil, fmt.Errorf("testnet: %s holds a chain of several validators; start it with as many or use another directory", chainHome)
		}
		n.Chain, err = node.New(chainHome, opts...)
		if err != nil {
			return nil, fmt.Errorf("testnet: chain: %w", err)
		}
		if err := n.Chain.Start(ctx); err != nil {
			n.Chain = nil
			return nil, fmt.Errorf("testnet: start chain: %w", err)
		}
	}
	n.Client = chain.NewClient(n.Chain.Transport())

	su := prev
	if !resumed {
		if su, err = setupChain(ctx, n.Client, k, cfg.Providers); err != nil {
			return nil, err
		}
		if err := writeSetup(dir, su); err != nil {
			return nil, fmt.Errorf("testnet: record setup: %w", err)
		}
	}
	n.MemberID, n.Channel, n.Bag = su.Member, su.Channel, su.Bag
	for i := range cfg.Providers {
		n.providers = append(n.providers, &Provider{
			Index:  i,
			Worker: su.Workers[i],
			Bucket: su.Buckets[i],
			Key:    k.workers[i],
			Dir:    filepath.Join(dir, fmt.Sprintf("provider-%d", i)),
			net:    n,
		})
	}
	for _, p := range n.providers {
		if err := p.start(ctx); err != nil {
			return nil, err
		}
	}
	if err := n.connect(ctx); err != nil {
		return nil, err
	}
	for _, p := range n.providers {
		if err := p.waitPublished(ctx); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// waitPublished waits until the chain's operator metadata of the
// provider's bucket names its peer ID and current addresses, which the
// provider publishes as it starts: from then on clients that start from the
// chain can dial it, and no publication of its is left in flight.
func (p *Provider) waitPublished(ctx context.Context) error {
	h := p.Host()
	if h == nil {
		return nil
	}
	want := map[string]bool{}
	for _, a := range h.Addrs() {
		want[a.String()] = true
	}
	err := ctxsleep.Poll(ctx, func() bool {
		b, err := p.net.Client.StorageBucket(ctx, p.Bucket)
		if err != nil || b.Metadata == nil || b.Metadata.PeerID != h.ID().String() {
			return false
		}
		n := 0
		for _, a := range b.Metadata.Multiaddrs {
			if want[a] {
				n++
			}
		}
		return n == len(want)
	})
	if err != nil {
		return fmt.Errorf("testnet: provider %d did not publish its metadata on chain: %w", p.Index, err)
	}
	return nil
}

// connect connects every running provider to every other and refreshes
// their DHT routing tables, so lookups work at once.
func (n *Network) connect(ctx context.Context) error {
	running := n.running()
	for i, a := range running {
		for _, b := range running[i+1:] {
			if err := connectPair(ctx, a, b); err != nil {
				return fmt.Errorf("testnet: connect provider %d to provider %d: %w", a.Index, b.Index, err)
			}
		}
	}
	return n.refresh(ctx, running)
}

// connectPair connects a to b. The providers dial each other on their own
// too (sync, DHT), and a simultaneous dial can kill one handshake: a
// failed dial counts as done when the pair ended up connected anyway, and
// is retried (past the swarm's dial backoff) otherwise.
func connectPair(ctx context.Context, a, b *Provider) error {
	var err error
	for range 3 {
		if err = a.Host().Connect(ctx, b.AddrInfo()); err == nil {
			return nil
		}
		if a.Host().Libp2p().Network().Connectedness(b.AddrInfo().ID) == network.Connected {
			return nil
		}
		a.Host().ClearDialBackoff(b.AddrInfo().ID)
	}
	return err
}

// refresh waits until each provider's DHT routing table holds the other
// running providers, then refreshes it.
func (n *Network) refresh(ctx context.Context, ps []*Provider) error {
	if len(ps) < 2 {
		return nil
	}
	for _, p := range ps {
		h := p.Host()
		// Identify runs after a connection opens; the DHT adds a peer once
		// it knows the peer speaks the DHT protocol. The table announces no
		// changes, so its size is polled.
		if err := ctxsleep.Poll(ctx, func() bool { return h.DHT().RoutingTable().Size() >= 1 }); err != nil {
			return fmt.Errorf("testnet: provider %d: empty DHT routing table: %w", p.Index, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.Host().RefreshRoutingTable(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) running() []*Provider {
	var out []*Provider
	for _, p := range n.providers {
		if p.Running() {
			out = append(out, p)
		}
	}
	return out
}

// KeyFile returns the path of a key the network keeps under Dir/keys:
// name is "storage-lead", "distribution-lead", "member" or "provider-<i>"
// (provider i's worker role and transactor key). Commands run against the
// network sign with them (-k/--key, or key in a config file).
func (n *Network) KeyFile(name string) string {
	return keyFile(n.Dir, name)
}

// Provider returns provider i.
func (n *Network) Provider(i int) *Provider { return n.providers[i] }

// Providers returns every provider, in order.
func (n *Network) Providers() []*Provider { return n.providers }

// Close stops the providers, then the chain. It is idempotent.
func (n *Network) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		errs = append(errs, n.closeDistributors())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range n.providers {
			wg.Go(func() {
				if err := p.Kill(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		n.clientMu.Lock()
		if n.client != nil {
			errs = append(errs, n.client.Close())
			n.client = nil
		}
		for _, rh := range n.renters {
			errs = append(errs, rh.close())
		}
		n.renters = nil
		n.clientMu.Unlock()
		for i, v := range n.validators[min(1, len(n.validators)):] {
			if v != nil {
				if err := v.Stop(); err != nil {
					errs = append(errs, fmt.Errorf("testnet: stop validator %d: %w", i+1, err))
				}
			}
		}
		if n.Chain != nil {
			if err := n.Chain.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("testnet: stop chain: %w", err))
			}
		}
	})
	return errors.Join(errs...)
}

// start opens the provider's identity and store, starts its host and its
// server. On failure everything it opened is closed again.
func (p *Provider) start(ctx context.Context) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		return fmt.Errorf("testnet: provider %d is running", p.Index)
	}
	n := p.net
	log := n.cfg.Logger.With("provider", p.Index)
	key, err := p2p.LoadOrCreateIdentity(filepath.Join(p.Dir, "identity.key"))
	if err != nil {
		return fmt.Errorf("testnet: provider %d: identity: %w", p.Index, err)
	}
	listen := []string{"/ip4/127.0.0.1/tcp/0"}
	if n.cfg.ProviderListenAddrs != nil {
		listen = n.cfg.ProviderListenAddrs(p.Index)
	}
	var bootstrap []peer.AddrInfo
	for _, o := range n.providers {
		if o != p && o.Running() {
			bootstrap = append(bootstrap, o.AddrInfo())
		}
	}
	hopts := []p2p.Option{
		p2p.WithIdentity(key),
		p2p.WithListenAddrs(listen...),
		p2p.WithBootstrap(bootstrap...),
		p2p.WithLogger(log),
		p2p.WithPubSubOptions(contracts.ScoreOptions()...),
	}
	if n.cfg.HostOptions != nil {
		hopts = append(hopts, n.cfg.HostOptions(p.Index)...)
	}
	hopts = append(hopts, p.hostOpts...)
	h, err := p2p.New(ctx, hopts...)
	if err != nil {
		return fmt.Errorf("testnet: provider %d: host: %w", p.Index, err)
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	grace := n.cfg.SessionGrace
	if grace <= 0 {
		grace = time.Second
	}
	bs, err := blockstore.Open(filepath.Join(p.Dir, "blocks"), blockstore.WithLogger(log), blockstore.WithSessionExpiry(grace))
	if err != nil {
		return fmt.Errorf("testnet: provider %d: block store: %w", p.Index, err)
	}
	defer func() {
		if err != nil {
			bs.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	opts := []provider.Option{
		provider.WithLogger(log),
		provider.WithMetrics(reg),
		provider.WithStateDir(p.Dir),
		provider.WithOrphanedSessionGrace(grace),
		provider.WithDeletionGrace(n.cfg.DeletionGrace),
	}
	if n.cfg.StatusAddrs != nil {
		if addr := n.cfg.StatusAddrs(p.Index); addr != "" {
			opts = append(opts, provider.WithStatusAddr(addr))
		}
	}
	opts = append(opts, n.cfg.ProviderOptions...)
	if n.cfg.ProviderOptionsFor != nil {
		opts = append(opts, n.cfg.ProviderOptionsFor(p.Index)...)
	}
	client := n.Client
	if n.cfg.ChainTransport != nil {
		client = chain.NewClient(n.cfg.ChainTransport(p.Index, n.Chain.Transport()))
	}
	srv, err := provider.New(h, bs, client, provider.Identity{Worker: p.Worker, Bucket: p.Bucket, Transactor: p.Key}, opts...)
	if err != nil {
		return fmt.Errorf("testnet: provider %d: %w", p.Index, err)
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		return fmt.Errorf("testnet: provider %d: %w", p.Index, err)
	}
	pc, err := p.startContracts(h, reg, srv)
	if err != nil {
		srv.Close()
		return err
	}
	p.host, p.store, p.server, p.registry, p.contracts = h, bs, srv, reg, pc
	return nil
}

// Kill stops the provider as if its machine went down: its server, block
// store and host close; its directory stays. Killing a stopped provider
// does nothing.
func (p *Provider) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server == nil {
		return nil
	}
	errs := []error{p.contracts.close(), p.server.Close(), p.host.Close(), p.store.Close()}
	p.host, p.store, p.server, p.registry, p.contracts = nil, nil, nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testnet: provider %d: %w", p.Index, err)
	}
	return nil
}

// Restart starts a stopped provider again on its directory (same identity,
// same store, a new port), connects it to the running providers and waits
// until it has published its new addresses on chain.
func (p *Provider) Restart(ctx context.Context) error {
	if err := p.start(ctx); err != nil {
		return err
	}
	others := []*Provider{p}
	for _, o := range p.net.running() {
		if o == p {
			continue
		}
		if err := p.Host().Connect(ctx, o.AddrInfo()); err != nil {
			return fmt.Errorf("testnet: connect provider %d to provider %d: %w", p.Index, o.Index, err)
		}
		others = append(others, o)
	}
	if err := p.net.refresh(ctx, others); err != nil {
		return err
	}
	return p.waitPublished(ctx)
}

// Running reports whether the provider runs.
func (p *Provider) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.server != nil
}

// Host returns the running provider's libp2p host (nil when stopped).
func (p *Provider) Host() *p2p.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.host
}

// Store returns the running provider's block store (nil when stopped).
func (p *Provider) Store() *blockstore.Store {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.store
}

// Server returns the running provider's server (nil when stopped).
func (p *Provider) Server() *provider.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.server
}

// Registry returns the running provider's metrics registry (nil when
// stopped).
func (p *Provider) Registry() *prometheus.Registry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registry
}

// AddrInfo returns the running provider's peer ID and addresses.
func (p *Provider) AddrInfo() peer.AddrInfo {
	h := p.Host()
	if h == nil {
		return peer.AddrInfo{}
	}
	return h.AddrInfo()
}

// Holds reports whether the running provider holds object obj whole: its
// manifest and every block of it, and serves it. A stopped provider holds
// nothing.
func (p *Provider) Holds(obj chain.ObjectID) bool {
	bs := p.Store()
	if bs == nil {
		return false
	}
	if _, ok, err := bs.Manifest(uint64(obj)); err != nil || !ok {
		return false
	}
	missing, err := bs.MissingBlocks(uint64(obj))
	if err != nil || len(missing) > 0 {
		return false
	}
	srv := p.Server()
	return srv != nil && srv.Serving(obj)
}
