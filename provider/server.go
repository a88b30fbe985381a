package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/operators"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Identity is who a storage provider node is on chain: the storage worker
// that operates its one bucket, and the key that signs its acceptances.
type Identity struct {
	// Worker is the storage worker that is the bucket's active operator.
	Worker chain.WorkerID
	// Bucket is the storage bucket the node operates; it stores every bag
	// assigned to it.
	Bucket chain.StorageBucketID
	// Transactor signs accept_pending_data_objects: the bucket's registered
	// transactor account, or the worker's role account.
	Transactor chain.Key
}

// chainAPI is what the node needs of the data directory; *chain.Client
// implements it.
type chainAPI interface {
	Info(ctx context.Context) (chain.NodeInfo, error)
	Params(ctx context.Context) (chain.Params, error)
	Bag(ctx context.Context, id chain.BagID) (chain.Bag, error)
	StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error)
	Worker(ctx context.Context, g chain.Group, id chain.WorkerID) (chain.Worker, error)
	DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error)
	Objects(ctx context.Context, bag chain.BagID) ([]chain.DataObject, error)
	Submit(ctx context.Context, key chain.Key, msg chain.Msg) (chain.Committed, error)
	Subscribe(ctx context.Context, fromHeight int64) (<-chan chain.BlockEvents, <-chan error)
}

// Server is a storage provider node (`satchel storage server`): it serves
// the store and fetch protocols for the bags assigned to its bucket,
// accepts bound uploads on chain, follows the chain to sync what it lacks
// from other providers and to drop what the chain removed, repairs corrupt
// blocks from peers, announces its bags on the DHT and reports its state
// over HTTP.
//
// The chain is the authority and events are only hints: every change is
// applied by comparing the chain's state of a bag with the store, so a
// missed event, a crash or a restart after a long downtime all end in the
// same state as an uninterrupted run.
//
// The Server does not own the host, the block store or the chain client:
// the caller closes them after Close.
type Server struct {
	h   *p2p.Host
	bs  *blockstore.Store
	c   chainAPI
	id  Identity
	cfg config
	log *slog.Logger
	m   *metrics

	holdings *holdings
	auth     *chainAuth
	policy   *servePolicy
	peers    *peerFinder
	state    *stateFile
	tombs    *tombstones
	recon    *reconciler
	syncer   *syncQueue
	acceptor *acceptor
	bound    *boundOnce // the bound objects counted (onBound)
	repairs  *repairQueue
	announce *announcer
	full     *noSpace // a full disk, logged with the fix (diskfull.go)

	fetch  *fetch.Client
	storeH *store.Handler
	relay  *store.Relay // forwards pipelined chunks to the next provider
	fetchH *fetch.Handler
	auditH *audit.Handler
	audits *auditor      // audit.go
	scrub  *scrubber     // scrub.go
	am     *auditMetrics // audit_metrics.go
	// priority names the host's DHT priority peers (dht_priority.go); nil
	// unless started with a chain client that lists storage buckets.
	priority *operators.Priority
	httpSrv  *http.Server
	httpAddr net.Addr

	// amu guards assignedBags, the bags the chain assigns to the bucket as
	// last seen, and cleanupWait, the confirmations each object of a bag
	// moved away has so far.
	amu          sync.Mutex
	assignedBags map[chain.BagID]bool
	cleanupWait  map[uint64]int

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New prepares a provider node over a running host, an open block store
// and a chain client; Start (or Run) makes it serve. It registers its
// metrics (WithMetrics) at once, so a registry holds one Server's
// collectors at a time.
func New(h *p2p.Host, bs *blockstore.Store, c *chain.Client, id Identity, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, errors.New("provider: no chain client")
	}
	return newServer(h, bs, c, id, opts...)
}

func newServer(h *p2p.Host, bs *blockstore.Store, c chainAPI, id Identity, opts ...Option) (*Server, error) {
	if h == nil || bs == nil {
		return nil, errors.New("provider: a host and a block store are required")
	}
	if id.Transactor.IsZero() {
		return nil, errors.New("provider: no transactor key: the node needs the key that accepts uploads on chain")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.operatorKey.IsZero() {
		cfg.operatorKey = id.Transactor
	}
	s := &Server{
		h:   h,
		bs:  bs,
		c:   c,
		id:  id,
		cfg: cfg,
		log: cfg.log.With("component", "provider", "bucket", uint64(id.Bucket)),
	}
	s.holdings = newHoldings(bs, cfg.serveGrace)
	s.auth = newChainAuth(c, id.Bucket)
	s.policy = &servePolicy{h: s.holdings}
	s.peers = newPeerFinder(h, c, id.Bucket)
	if cfg.stateDir == "" {
		cfg.stateDir = bs.Dir()
		s.cfg.stateDir = cfg.stateDir
	}
	s.state = newStateFile(cfg.stateDir)
	s.tombs = newTombstones(cfg.stateDir)
	s.recon = newReconciler()
	s.syncer = newSyncQueue()
	s.acceptor = newAcceptor()
	s.bound = newBoundOnce()
	s.repairs = newRepairQueue()
	s.announce = newAnnouncer()
	s.full = &noSpace{s: s}
	m, err := newMetrics(cfg.registerer, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.audits, s.scrub, s.am = newAuditor(cfg.audit), newScrubber(cfg.scrub), newAuditMetrics()
	s.audits.operators = newBagOperators(s.c)
	if err := s.am.register(m); err != nil {
		return nil, err
	}
	return s, nil
}

// Start checks the node's identity against the chain, loads its state and
// the index of what it stores, registers the store and fetch protocols on
// the host and starts the node's work: following the chain, syncing,
// accepting, cleaning up, repairing, announcing and the status server.
// It names the chain's active storage operators as the host's DHT priority
// peers (dht_priority.go), whose provider records no flood of other peers'
// crowds out; Close removes that rule from the host.
// ctx bounds the start only; the node runs until Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("provider: server is closed")
	}
	if s.started {
		return errors.New("provider: server already started")
	}
	if err := s.checkIdentity(ctx); err != nil {
		return err
	}
	if err := s.state.load(); err != nil {
		return err
	}
	if err := s.tombs.load(); err != nil {
		return err
	}
	s.logTombstones()
	info, err := s.c.Info(ctx)
	if err != nil {
		return fmt.Errorf("provider: read chain height: %w", err)
	}
	if err := s.loadHoldings(ctx); err != nil {
		return err
	}
	s.m.chainHeight.Set(float64(info.Height))
	saved := s.state.height()
	if saved == 0 {
		// A new node: the full reconcile that starts it covers the chain
		// up to this height, so if it stops before the next block it
		// resumes here.
		s.state.setHeight(info.Height)
	}

	key := s.h.Libp2p().Peerstore().PrivKey(s.h.ID())
	if key == nil {
		return errors.New("provider: the host's private key is not in its peerstore")
	}
	if s.cfg.statusAddr != "" {
		if err := s.startStatus(); err != nil {
			return err
		}
	}
	s.fetch = fetch.NewClient(s.h.Libp2p())
	s.relay = store.NewRelay(s.h.Libp2p())
	storeOpts := []store.HandlerOption{store.WithObjectBound(s.onBound), store.WithLogger(s.cfg.log), store.WithRelay(s.relay)}
	fetchOpts := []fetch.Option{fetch.WithCorruptBlock(s.onCorrupt), fetch.WithLogger(s.cfg.log)}
	if s.cfg.registerer != nil {
		storeOpts = append(storeOpts, store.WithMetrics(s.cfg.registerer))
		fetchOpts = append(fetchOpts, fetch.WithMetrics(s.cfg.registerer))
	}
	s.storeH = store.NewHandler(diskFullBlocks{s.bs.ForProtocols(), s.full}, s.auth, key, storeOpts...)
	s.fetchH = fetch.NewHandler(s.bs.ForProtocols(), s.policy, fetchOpts...)
	s.storeH.Register(s.h.Protocol())
	s.fetchH.Register(s.h.Protocol())

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.started = true
	if err := s.startAudits(runCtx, key); err != nil {
		return fmt.Errorf("provider: audits: %w (Close stops what started)", err)
	}
	s.startRecordPriority(runCtx)
	if s.cfg.scrub.rate > 0 {
		s.goFunc(func() { s.scrubLoop(runCtx) })
	}
	// The first reconcile covers the whole bucket, so a node that was down
	// catches up from the chain's state, not only from events.
	s.recon.markAll()
	s.announce.markAll()
	s.goFunc(func() { s.followLoop(runCtx, saved, info.Height) })
	s.goFunc(func() { s.reconcileLoop(runCtx) })
	s.goFunc(func() { s.syncLoop(runCtx) })
	s.goFunc(func() { s.acceptLoop(runCtx) })
	s.goFunc(func() { s.repairLoop(runCtx) })
	s.goFunc(func() { s.announceLoop(runCtx) })
	s.goFunc(func() { s.stateLoop(runCtx) })
	s.log.Info("storage provider started", "peer", s.h.ID(), "worker", uint64(s.id.Worker),
		"objects", s.holdings.objectCount(), "height", info.Height, "status", s.StatusAddr())
	return nil
}

// Run starts the node and serves until ctx ends, then closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Close stops serving and stops every goroutine of the node, returning
// once they have all returned; the follower's height is saved last.
// Streams being served run to their end. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		s.m.unregister()
		return nil
	}
	var errs []error
	if s.storeH != nil {
		errs = append(errs, s.storeH.Close())
	}
	if s.relay != nil {
		errs = append(errs, s.relay.Close())
	}
	if s.fetchH != nil {
		errs = append(errs, s.fetchH.Close())
	}
	errs = append(errs, s.stopAudits())
	s.h.SetProviderPriority(nil)
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.httpSrv.Shutdown(ctx))
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	if s.fetch != nil {
		errs = append(errs, s.fetch.Close())
	}
	errs = append(errs, s.state.save())
	s.m.unregister()
	s.log.Info("storage provider stopped")
	return errors.Join(errs...)
}

// goFunc runs fn in a goroutine that Close waits for.
func (s *Server) goFunc(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// checkIdentity makes sure the chain agrees with the node's identity before
// it serves anything, so a misconfigured node fails at once with the cause
// instead of refusing every upload.
func (s *Server) checkIdentity(ctx context.Context) error {
	b, err := s.c.StorageBucket(ctx, s.id.Bucket)
	if err != nil {
		return fmt.Errorf("provider: storage bucket %d: %w", s.id.Bucket, err)
	}
	if b.OperatorStatus != chain.OperatorActive || b.Operator == nil || *b.Operator != s.id.Worker {
		op := "no operator"
		if b.Operator != nil {
			op = fmt.Sprintf("worker %d (%s)", *b.Operator, b.OperatorStatus)
		}
		return fmt.Errorf("provider: storage worker %d is not the active operator of storage bucket %d (it has %s); accept the invitation with `satchel storage operator accept-invitation`, or pass the right -w/-i", s.id.Worker, s.id.Bucket, op)
	}
	acct := s.id.Transactor.Account()
	if acct != b.Transactor {
		w, err := s.c.Worker(ctx, chain.StorageGroup, s.id.Worker)
		if err != nil {
			return fmt.Errorf("provider: storage worker %d: %w", s.id.Worker, err)
		}
		if w.Account != acct {
			return fmt.Errorf("provider: key account %s is neither storage bucket %d's transactor %s nor worker %d's role account %s, so it cannot accept uploads; pass the transactor key with --key", acct, s.id.Bucket, b.Transactor, s.id.Worker, w.Account)
		}
	}
	return nil
}

// loadHoldings looks at the manifests of every bag the node may hold (the
// bags assigned to its bucket and the bags its state remembers): it
// remembers the bags that hold objects and queues the repair of blocks a
// crash lost. Nothing is loaded into memory: holdings answers from the
// store's index.
func (s *Server) loadHoldings(ctx context.Context) error {
	b, err := s.c.StorageBucket(ctx, s.id.Bucket)
	if err != nil {
		return fmt.Errorf("provider: storage bucket %d: %w", s.id.Bucket, err)
	}
	bags := map[chain.BagID]bool{}
	for _, bag := range b.Bags {
		bags[bag] = true
		s.setAssigned(bag, true)
	}
	for _, bag := range s.state.bags() {
		bags[bag] = true
	}
	for bag := range bags {
		objs, err := s.bs.Objects(string(bag))
		if err != nil {
			return fmt.Errorf("provider: list objects of bag %s: %w", bag, err)
		}
		if len(objs) > 0 {
			s.state.addBag(bag)
		}
		// A crash can cost blocks an object's manifest names (the store
		// drops index entries whose file did not survive); fetch them again.
		for _, o := range objs {
			missing, err := s.bs.MissingBlocks(o)
			if err != nil {
				return fmt.Errorf("provider: check blocks of object %d: %w", o, err)
			}
			for _, c := range missing {
				s.repairs.add(c)
			}
		}
	}
	return nil
}

// onBound is called by the store handler once a BIND recorded the object:
// every chunk is held and the root verified (also when the BIND then
// failed to record its contract and is answered FAILED: the object is held
// all the same, and a repeated BIND calls it again, which the acceptor
// takes once, as bound_objects_total counts it once). It remembers the bag
// and queues the object's acceptance. It must not block the stream.
func (s *Server) onBound(bag string, object uint64) {
	// The store's index serves the object from its manifest on (holdings).
	ok, err := s.bs.HasObject(object)
	if err != nil || !ok {
		s.log.Warn("bound object has no manifest", "bag", bag, "object", object, "err", err)
		s.recon.mark(chain.BagID(bag))
		return
	}
	s.state.addBag(chain.BagID(bag))
	if s.bound.first(object) {
		s.m.boundObjects.Inc()
	}
	s.acceptor.add(chain.BagID(bag), chain.ObjectID(object))
}

// onCorrupt is called by the fetch handler for a block that failed its
// check while being served: the store has quarantined it; queue its repair.
func (s *Server) onCorrupt(c cid.Cid) {
	s.log.Warn("corrupt block found while serving; repairing it from a peer", "cid", c)
	s.repairs.add(c)
}

// Serving reports whether the node holds object obj and serves its blocks
// over /satchel/fetch/1.0.0.
func (s *Server) Serving(obj chain.ObjectID) bool { return s.holdings.has(uint64(obj)) }

// StatusAddr returns the address the status server listens on, or "" when
// it does not run.
func (s *Server) StatusAddr() string {
	if s.httpAddr == nil {
		return ""
	}
	return s.httpAddr.String()
}

// Identity returns the node's chain identity.
func (s *Server) Identity() Identity { return s.id }

// Host returns the node's libp2p host.
func (s *Server) Host() *p2p.Host { return s.h }
