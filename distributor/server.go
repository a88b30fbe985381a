package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/operators"
	"github.com/satchel-net/satchel/p2p"
)

// cacheSaveInterval is how often the cache's statistics are saved while
// the node runs (they are saved on Close too).
const cacheSaveInterval = 30 * time.Second

// Identity is who the node is on chain: the distribution worker and the
// buckets it operates. The node serves the bags of those of Buckets that
// distribute and that Worker operates, and follows changes to them.
type Identity struct {
	Worker  chain.WorkerID
	Buckets []chain.DistributionBucketID
}

// Server is a distributor node. Start it, then Close it.
type Server struct {
	h     *p2p.Host
	id    Identity
	cfg   config
	log   *slog.Logger
	index *index
	srcs  *sources
	cache *cache
	fetch *fetcher
	m     *metrics

	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	http    *http.Server
	ln      net.Listener

	warming chan struct{} // slots of warm runs
	misses  chan struct{} // slots of answers reading from the network
	shares  *missShares   // each client's share of them
	parked  chan struct{} // tokens of answers keeping a leaf while their client is slow

	ctypesMu sync.Mutex
	ctypes   map[chain.ObjectID]string // of objects not cached

	cacheControl []string // of accepted objects

	// operators is the chain's active storage operators, whose DHT
	// provider records the host keeps first (priority, dht_priority.go;
	// nil unless the chain reader lists storage buckets).
	operators operators.Set
	priority  *operators.Priority
}

// New returns a distributor node for id that fetches blocks through src
// from the storage providers it finds with h (their published metadata on
// chain, and the DHT) and reads the chain through c. WithCacheDir is
// required.
func New(h *p2p.Host, src BlockSource, c ChainReader, id Identity, opts ...Option) (*Server, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if h == nil || src == nil || c == nil {
		return nil, errors.New("distributor: New needs a host, a block source and a chain reader")
	}
	if len(id.Buckets) == 0 {
		return nil, errors.New("distributor: no distribution bucket to serve; name at least one (-B family:index)")
	}
	log := cfg.log.With("component", "distributor")
	ch, err := openCache(cfg.cacheDir, cfg.cacheSize, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{h: h, id: id, cfg: cfg, log: log, cache: ch, ctx: ctx, cancel: cancel, ctypes: map[chain.ObjectID]string{},
		warming: make(chan struct{}, maxWarming), misses: make(chan struct{}, cfg.maxMisses),
		parked: make(chan struct{}, cfg.maxMisses), shares: newMissShares(cfg.maxMisses, cfg.maxConnsPerClient)}
	s.cacheControl = []string{fmt.Sprintf("public, max-age=%d, immutable", int64(cfg.maxAge.Seconds()))}
	s.index = newIndex(ctx, c, id, cfg.objectRecords, log)
	s.m = newMetrics(cfg.reg, s)
	health := newChainHealth(log, s.m.chainUp, s.m.chainFailures)
	s.index.health = health
	if cfg.followBackoff > 0 {
		s.index.backoff, s.index.maxBackoff = cfg.followBackoff, max(cfg.followBackoff, cfg.maxFollowBackoff)
	}
	s.srcs = newSources(h, c, health)
	s.fetch = &fetcher{src: src, srcs: s.srcs, cache: ch, m: s.m, log: log, timeout: cfg.fetchTimeout, busyWait: cfg.busyWait, life: ctx,
		slots: make(chan struct{}, cfg.maxFetches), calls: map[callKey]*call{}, active: map[chain.ObjectID]int{}}
	ch.alive = s.index.isServed
	s.index.onDrop = func(ids []chain.ObjectID) {
		ch.remove(ids...)
		s.ctypesMu.Lock()
		for _, id := range ids {
			delete(s.ctypes, id)
		}
		s.ctypesMu.Unlock()
		log.Info("objects deleted on chain; evicted", "objects", len(ids))
	}
	s.index.onBagsLeft = func() {
		n := ch.retain(s.index.isServed)
		s.ctypesMu.Lock()
		maps.DeleteFunc(s.ctypes, func(id chain.ObjectID, _ string) bool { return !s.index.isServed(id) })
		s.ctypesMu.Unlock()
		if n > 0 {
			log.Info("bags no longer served; their objects evicted", "objects", n)
		}
	}
	s.index.onSources = func(bag *chain.BagID) {
		s.srcs.invalidate(bag)
		if bag == nil { // an operator event: who operates may have changed
			s.operators.Forget()
		}
	}
	s.index.onAccepted = s.warm
	return s, nil
}

// Start loads the chain's view (waiting for it, within ctx), drops cached
// objects no longer served, and starts following the chain and serving
// HTTP. ctx bounds the start only.
func (s *Server) Start(ctx context.Context) error {
	s.started = time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.index.run(s.ctx)
	}()
	select {
	case <-s.index.ready:
	case <-ctx.Done():
		return fmt.Errorf("distributor: load the chain's state: %w", ctx.Err())
	}
	s.startRecordPriority()
	ln, err := net.Listen("tcp", s.cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("distributor: listen on %s: %w; pass another address", s.cfg.httpAddr, err)
	}
	total := s.cfg.maxConnsTotal()
	lim := newConnLimiter(ln, total, s.cfg.maxConnsPerClient, s.m.connMetrics(), s.log)
	s.m.connsLimit.Set(float64(total))
	s.ln = lim
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:         lim.connState,
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(lim); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(cacheSaveInterval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				if err := s.cache.save(false); err != nil {
					s.log.Warn("save cache state", "err", err)
				}
			}
		}
	}()
	s.log.Info("distributor serving", "url", s.URL(), "buckets", len(s.index.servedBuckets()),
		"max_conns", total, "max_conns_per_client", s.cfg.maxConnsPerClient)
	return nil
}

// URL returns the base URL of the HTTP API ("" before Start).
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving and following the chain, waits for fetches in
// flight, and saves the cache's state for the next start.
func (s *Server) Close() error {
	s.h.SetProviderPriority(nil)
	if s.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.http.Shutdown(sctx)
		cancel()
		_ = s.http.Close()
	}
	s.cancel()
	s.wg.Wait()
	s.fetch.wg.Wait()
	s.cache.closeFiles()
	return s.cache.save(true)
}

// Status is what GET /api/v1/status answers.
type Status struct {
	ID      string   `json:"id"`
	Worker  uint64   `json:"worker"`
	Buckets []string `json:"buckets"`
	Bags    int      `json:"bags"`
	Objects int      `json:"objects"`
	// ChainHeight is the last block read; while ChainUp is false it may
	// be behind.
	ChainHeight int64 `json:"chainHeight"`
	// ChainUp is whether the last read of the chain node succeeded;
	// ChainLastContact is when a read last did (zero: none yet), and
	// ChainDownSince when reads began to fail (zero while up). The reads'
	// errors are in the log.
	ChainUp          bool      `json:"chainUp"`
	ChainLastContact time.Time `json:"chainLastContact,omitzero"`
	ChainDownSince   time.Time `json:"chainDownSince,omitzero"`
	// CacheUsed and CacheLimit are bytes; CacheObjects counts objects with
	// blocks in the cache.
	CacheUsed     int64          `json:"cacheUsed"`
	CacheLimit    int64          `json:"cacheLimit"`
	CacheObjects  int            `json:"cacheObjects"`
	CacheEvicted  uint64         `json:"cacheEvicted"`
	UptimeSeconds float64        `json:"uptime"`
	Sources       []SourceStatus `json:"sources"`
}

// Status returns the node's status.
func (s *Server) Status() Status {
	bags, objects, height := s.index.counts()
	used, limit, n, ev := s.cache.usage()
	st := Status{
		ID: s.h.ID().String(), Worker: uint64(s.id.Worker), Bags: bags, Objects: objects, ChainHeight: height,
		CacheUsed: used, CacheLimit: limit, CacheObjects: n, CacheEvicted: ev,
		UptimeSeconds: time.Since(s.started).Seconds(), Sources: s.srcs.status(),
	}
	st.ChainUp, st.ChainLastContact, st.ChainDownSince = s.index.health.state()
	for _, b := range s.index.servedBuckets() {
		st.Buckets = append(st.Buckets, b.String())
	}
	return st
}

// maxWarming bounds how many objects have their DAG warmed at once; more
// accepted meanwhile are not warmed (their first request walks the DAG).
const maxWarming = 4

// warm fetches the root and interior nodes of newly accepted objects into
// the cache, so that a first request, even a seek far into the object,
// waits only for the leaves it reads. Best effort.
func (s *Server) warm(objs []chain.DataObject) {
	for _, o := range objs {
		select {
		case s.warming <- struct{}{}:
		default:
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.warming }()
			rd, err := newObjectReader(s.ctx, s.fetch, newRecord(o), false, nil)
			if err != nil {
				return
			}
			defer rd.Close()
			if _, err := rd.contains(cid.Undef); err != nil {
				s.log.Debug("warm object DAG", "object", o.ID, "err", err)
			}
		}()
	}
}

// Cached reports whether any content of object id is in the cache.
func (s *Server) Cached(id chain.ObjectID) bool { return s.cache.has(id) }

// CacheDiskUsage returns the bytes the cache's block files take on disk.
func (s *Server) CacheDiskUsage() (int64, error) { return s.cache.diskUsage() }

// Serving reports whether the node serves object id (accepted or not).
func (s *Server) Serving(id chain.ObjectID) bool { return s.index.isServed(id) }

// PeerID returns the node's libp2p peer ID.
func (s *Server) PeerID() peer.ID { return s.h.ID() }

// PublishEndpoint sets, for each bucket of id that worker operates, the
// operator metadata's endpoint to endpoint (keeping its location and extra)
// when it differs, signing with key, the worker's role account.
func PublishEndpoint(ctx context.Context, c interface {
	ChainReader
	Submitter
}, key chain.Key, id Identity, endpoint string) error {
	for _, bid := range id.Buckets {
		b, err := c.DistributionBucket(ctx, bid)
		if err != nil {
			return fmt.Errorf("distributor: bucket %s: %w", bid, err)
		}
		var md chain.DistributionOperatorMetadata
		found := false
		for _, o := range b.Operators {
			if o.Worker == id.Worker {
				found = true
				if o.Metadata != nil {
					md = *o.Metadata
				}
			}
		}
		if !found {
			return fmt.Errorf("distributor: worker %d does not operate distribution bucket %s; accept its invitation first (satchel distributor operator accept-invitation -B %s -w %d)", id.Worker, bid, bid, id.Worker)
		}
		if md.Endpoint == endpoint {
			continue
		}
		md.Endpoint = endpoint
		if _, err := c.Submit(ctx, key, chain.MsgSetDistributionOperatorMetadata{Worker: id.Worker, Bucket: bid, Metadata: md}); err != nil {
			return fmt.Errorf("distributor: publish endpoint of bucket %s: %w", bid, err)
		}
	}
	return nil
}
