package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Handler serves /satchel/store/1.0.0: it agrees to store a chunk when
// the Authorizer says so and the chunk's proof ties it to the object's
// content ID, checks segment hashes as data arrives and the whole chunk
// against its CID, stores it durably (Blocks.PutInSession) before answering
// DATA_RECEIVED, signs receipts with the node's key, and binds uploads to
// their objects.
type Handler struct {
	blocks  Blocks
	auth    Authorizer
	key     crypto.PrivKey
	self    peer.ID
	cfg     handlerConfig
	metrics *metrics
	log     *slog.Logger
	// proofs checks the proofs of registered objects' chunks, remembering
	// the interior nodes it verified: an object's chunks share them.
	proofs *chunker.ProofVerifier

	p2p.Registration // where it is served

	rmu      sync.Mutex
	sessions map[string]*sessionBytes // session → its reserved bytes and byte-count lock (sessionbytes.go); guarded by rmu
}

// HandlerOption configures NewHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	onBound func(bag string, object uint64)
	reg     prometheus.Registerer
	log     *slog.Logger
	now     func() time.Time
	relay   *Relay
	// backpressured, when set (tests), is called, with the stream's lock
	// held, each time a stream stops reading for its disk writes.
	backpressured func()
	// countWait, when set (tests), is called as a chunk's reservation is
	// about to wait for its session's lock (countSession).
	countWait func()
}

// WithRelay makes the handler forward chunks along a replication pipeline
// through r when a chunk request carries a forward list (docs/PROTOCOL.md,
// "Pipelined replication"). Without it, such a chunk is stored and every
// hop of its list reported failed ("does not forward"), so the uploader
// pushes to them itself. The caller closes r after the handler.
func WithRelay(r *Relay) HandlerOption {
	return func(c *handlerConfig) { c.relay = r }
}

// WithObjectBound sets fn, called once a BIND has recorded the object (the
// node then accepts it on chain), before BOUND is answered: also when the
// BIND then fails to record its storage contract (SessionBinder) and is
// answered FAILED, since the object is held from then on. A BIND repeated
// calls it again, so fn must take the same object twice. fn must not block
// for long.
func WithObjectBound(fn func(bag string, object uint64)) HandlerOption {
	return func(c *handlerConfig) { c.onBound = fn }
}

// WithMetrics registers the handler's Prometheus collectors on reg:
// satchel_provider_store_chunks_total{result}, satchel_provider_store_binds_total{result},
// satchel_provider_store_drops_total{result}, satchel_provider_store_bytes_in_total, satchel_provider_store_over_budget_total and
// satchel_provider_store_forwarded_hops_total{result}.
func WithMetrics(reg prometheus.Registerer) HandlerOption {
	return func(c *handlerConfig) { c.reg = reg }
}

// WithClock sets the handler's clock (default time.Now): what expiry
// checks and stalled exchanges (handler_stall.go) are measured by.
func WithClock(now func() time.Time) HandlerOption {
	return func(c *handlerConfig) { c.now = now }
}

// WithLogger sets the handler's logger (records carry
// component=store); the default is slog.Default(). It logs at Debug.
func WithLogger(l *slog.Logger) HandlerOption {
	return func(c *handlerConfig) { c.log = l }
}

// NewHandler returns a handler storing into blocks, asking auth, and signing
// receipts with key (the node's libp2p identity key). Register it on a
// host's stream framework.
func NewHandler(blocks Blocks, auth Authorizer, key crypto.PrivKey, opts ...HandlerOption) *Handler {
	cfg := handlerConfig{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}
	self, _ := peer.IDFromPrivateKey(key)
	return &Handler{
		blocks:   blocks,
		log:      log.With("component", "store"),
		auth:     auth,
		key:      key,
		self:     self,
		cfg:      cfg,
		metrics:  newMetrics(cfg.reg),
		proofs:   chunker.NewProofVerifier(0),
		sessions: make(map[string]*sessionBytes),
	}
}

// Register serves the store protocol on p (a host's Protocol), which
// contains and counts a panic in the handler or any of its workers. Close
// stops serving.
func (h *Handler) Register(p *p2p.Protocol) {
	h.Serve(p, p2p.StoreProtocol, h.serveStream, p2p.WithIdleTimeout(IdleTimeout))
}

// serveStream serves one store stream until the uploader closes its side,
// then waits for the exchanges' goroutines.
func (h *Handler) serveStream(ctx context.Context, s network.Stream) error {
	p := h.Protocol()
	if p == nil {
		return errors.New("store: handler closed")
	}
	c := newStoreConn(h, p, s)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ctx = ctx
	err := c.run(ctx)
	if err != nil {
		cancel() // stop authorisations of a stream that is going away
	}
	c.workers.Wait()
	return err
}

// storeConn is the provider's side of one store stream.
type storeConn struct {
	h      *Handler
	proto  *p2p.Protocol
	s      network.Stream
	log    *slog.Logger
	remote peer.ID
	ctx    context.Context // the stream's; ends when it is served no more

	wmu sync.Mutex // serialises reply writes; guards fw
	fw  *p2p.FrameWriter
	// replying counts the replies being written or waiting to be, and
	// holds taken for a reply about to follow: only the last one out
	// flushes, so a burst of replies (the chunks one grouped fsync
	// stored, each DATA_RECEIVED and its SIGNED) leaves in one write.
	replying atomic.Int32

	mu        sync.Mutex // guards exchanges, every storeExchange and the byte counts
	exchanges map[uint64]*storeExchange
	workers   sync.WaitGroup

	// partial counts the bytes of chunks still arriving, committing the
	// bytes of whole chunks being stored; drained signals committing going
	// down. Both are bounded by MaxStreamBuffered.
	partial, committing int
	drained             *sync.Cond
	// progress is when the stream last made progress, moved the data
	// bytes taken since (handler_stall.go).
	progress time.Time
	moved    int
}

func newStoreConn(h *Handler, p *p2p.Protocol, s network.Stream) *storeConn {
	remote := s.Conn().RemotePeer()
	c := &storeConn{
		h:         h,
		proto:     p,
		s:         s,
		fw:        p.NewFrameWriter(s, IdleTimeout),
		log:       h.log.With("remote", remote),
		remote:    remote,
		exchanges: make(map[uint64]*storeExchange),
		progress:  h.cfg.now(),
	}
	c.drained = sync.NewCond(&c.mu)
	return c
}

type exchangeState int

const (
	exAuthorizing exchangeState = iota // request being checked
	exAgreed                           // AGREED sent; expecting segments
	exReceiving                        // SEGMENTS_OK sent; data frames arriving
	exCommitting                       // all data in; being stored
	exStored                           // DATA_RECEIVED or ALREADY_STORED sent; expecting SIGN
	exSkipping                         // ALREADY_STORED at segments: data frames ignored
	exBinding                          // a BIND or DROP being processed
)

// exchangeKind is what an exchange's request asked for: it picks the
// exchange's metric and how a failure is answered.
type exchangeKind int

const (
	kindChunk exchangeKind = iota // a chunk request
	kindBind                      // a BIND
	kindDrop                      // a DROP
)

// storeExchange is one chunk's exchange on the provider's side.
type storeExchange struct {
	id      uint64
	kind    exchangeKind
	state   exchangeState
	bag     string
	object  uint64
	chunk   cid.Cid
	length  uint64
	expiry  time.Time
	session Session
	// reservedKey is the session whose byte reservation this exchange
	// holds, reservedBytes its entry; guarded by Handler.rmu.
	reservedKey   string
	reservedBytes *sessionBytes

	segSize  int
	hashes   [][]byte
	oneShot  bool // one segment whose hash is the CID's digest: the CID check covers it
	buf      []byte
	frame    []byte // the pooled frame body buf lies in, when it does
	received uint64

	signWanted bool
	// since is when the exchange entered its state: for a state waiting
	// for the uploader, when that wait began (handler_stall.go).
	since time.Time

	// Pipelined replication: the request's index, proof and forward list,
	// and what the hops after this provider answered (relayed receipts,
	// failures), sent with SIGNED.
	index       uint64
	proof       [][]byte
	forward     []Hop
	forwarded   bool // forwarding started
	relayed     []*pb.Receipt
	hopFailures []*pb.HopFailure
	nonce       []byte // the request's, echoed in the receipt and forwarded

	// partial and committing are this exchange's share of the stream's
	// byte counts.
	partial, committing int
	// mem is the memory reserved for the exchange in the stream's resource
	// scope, returned when its buffer is let go.
	mem int
}

// run reads frames until the uploader closes its side.
func (c *storeConn) run(ctx context.Context) error {
	fr := c.proto.NewFrameReader(c.s, MaxFrame, IdleTimeout).ReserveFrames().LimitElements(requestLimits)
	for {
		// Backpressure: past MaxStreamBuffered bytes waiting for the disk,
		// stop reading; flow control then holds the uploader.
		c.mu.Lock()
		if c.committing >= MaxStreamBuffered {
			if c.h.cfg.backpressured != nil {
				c.h.cfg.backpressured()
			}
			for c.committing >= MaxStreamBuffered {
				c.drained.Wait()
			}
			// The provider read nothing while its disk caught up: that
			// time is not the uploader's stall (expireStalled).
			c.progress, c.moved = c.h.cfg.now(), 0
		}
		c.mu.Unlock()
		var req pb.StoreRequest
		frame, err := readStoreFrame(fr, &req)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if p2p.IsTimeout(err) && c.idle() {
				return nil // idle with nothing open: end cleanly
			}
			return err
		}
		if err := c.handle(ctx, &req, frame); err != nil {
			return err
		}
		c.expireStalled()
	}
}

// reply writes one reply frame.
func (c *storeConn) reply(r *pb.StoreReply) {
	c.replying.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.fw.WriteMsg(r)
	if c.replying.Add(-1) == 0 && err == nil {
		// The last reply out flushes: every other one written since the
		// last flush waits in the buffer for this one.
		err = c.fw.Flush()
	}
	if err != nil {
		c.log.Debug("store reply not sent", "id", r.Id, "err", err)
		_ = c.s.Reset()
	}
}

// holdReplies keeps the replies written from now on in the buffer until
// the returned release, which flushes them unless another reply is on its
// way (that one flushes). Call release on every path, a panic's too.
func (c *storeConn) holdReplies() (release func()) {
	c.replying.Add(1)
	return func() {
		if c.replying.Add(-1) != 0 {
			return
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if err := c.fw.Flush(); err != nil {
			c.log.Debug("store replies not sent", "err", err)
			_ = c.s.Reset()
		}
	}
}

// end removes an exchange and answers its last reply. Removal comes first,
// so the uploader, which frees its window slot on that reply, never finds
// the provider's slot still taken.
func (c *storeConn) end(ex *storeExchange, r *pb.StoreReply) {
	c.mu.Lock()
	if c.exchanges[ex.id] == ex {
		delete(c.exchanges, ex.id)
	}
	c.unbufferLocked(ex)
	ex.buf = nil
	c.mu.Unlock()
	c.h.release(ex)
	r.Id = ex.id
	c.reply(r)
}

// refuse ends an exchange with REFUSED and the reason format gives.
func (c *storeConn) refuse(ex *storeExchange, format string, args ...any) {
	c.h.metrics.result(ex, "refused")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_REFUSED, Reason: fmt.Sprintf(format, args...)})
}

// refuseErr refuses an exchange with err as the reason, as busy when err
// matches ErrProviderBusy (a budget all peers share is spent: the memory
// budgets, the Authorizer's chain reads), so the uploader asks again or
// elsewhere instead of counting a failure; with no_space when err says the
// disk is full.
func (c *storeConn) refuseErr(ex *storeExchange, err error) {
	c.h.metrics.result(ex, "refused")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_REFUSED, Reason: err.Error(),
		Busy: errors.Is(err, ErrProviderBusy), NoSpace: noSpace(err)})
}

// failedErr ends an exchange with FAILED, the reason what followed by err,
// with no_space when err says the disk is full: the uploader then knows
// the provider's operator must act, whatever words its system uses.
func (c *storeConn) failedErr(ex *storeExchange, what string, err error) {
	c.h.metrics.result(ex, "failed")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_FAILED, Reason: what + ": " + err.Error(), NoSpace: noSpace(err)})
}

// failed ends an exchange with FAILED and the reason format gives.
func (c *storeConn) failed(ex *storeExchange, format string, args ...any) {
	c.h.metrics.result(ex, "failed")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_FAILED, Reason: fmt.Sprintf(format, args...)})
}

// handle processes one frame; frame is a data frame's pooled body, which
// the data handling takes over. An error resets the stream.
func (c *storeConn) handle(ctx context.Context, req *pb.StoreRequest, frame []byte) error {
	switch body := req.Body.(type) {
	case *pb.StoreRequest_Request:
		mem := int(min(body.Request.GetLength(), MaxChunkLength))
		return c.start(ctx, req.Id, kindChunk, "chunks", mem, func(ctx context.Context, ex *storeExchange) {
			c.authorize(ctx, ex, body.Request)
		})
	case *pb.StoreRequest_Bind:
		return c.start(ctx, req.Id, kindBind, "exchanges", bindMemory(body.Bind), func(ctx context.Context, ex *storeExchange) {
			c.bind(ctx, ex, body.Bind)
		})
	case *pb.StoreRequest_Drop:
		return c.start(ctx, req.Id, kindDrop, "exchanges", 0, func(ctx context.Context, ex *storeExchange) {
			c.drop(ctx, ex, body.Drop)
		})
	case *pb.StoreRequest_Segments:
		return c.onSegments(req.Id, body.Segments)
	case *pb.StoreRequest_Data:
		return c.onData(req.Id, body.Data, frame)
	case *pb.StoreRequest_Sign:
		return c.onSign(req.Id)
	default:
		return fmt.Errorf("%w: frame %d has no body", ErrProtocol, req.Id)
	}
}

// start opens an exchange of id in state st, reserves mem bytes for it in
// the stream's resource scope, and runs work on it on a worker, with
// AuthorizeTimeout to ask the Authorizer. An exchange over the in-flight
// limit is refused ("too many <what> in flight"), and so is one the memory
// budget of the stream, the peer or the node has no room for; reusing an
// open id resets the stream.
func (c *storeConn) start(ctx context.Context, id uint64, kind exchangeKind, what string, mem int, work func(context.Context, *storeExchange)) error {
	ex, ok, err := c.open(id, kind)
	if err != nil {
		return err
	}
	if !ok {
		c.refuse(ex, "too many %s in flight on one stream; keep at most %d", what, MaxChunksInFlight)
		return nil
	}
	if err := p2p.Reserve(c.s, mem); err != nil {
		c.refuseBudget(ex, err)
		return nil
	}
	c.mu.Lock()
	ex.mem = mem
	c.mu.Unlock()
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		ctx, cancel := context.WithTimeout(withRemote(ctx, c.remote), AuthorizeTimeout)
		defer cancel()
		if err := c.proto.Go(p2p.StoreProtocol, c.remote, func() { work(ctx, ex) }); err != nil {
			c.workerPanicked(ex)
		}
	}()
	return nil
}

// refuseBudget refuses an exchange whose reservation failed with err. Who
// should act depends on whose budget is spent (p2p.BudgetScope): the
// uploader's own (its stream's, its peer's) is answered "retry later with
// fewer requests in flight"; one every peer shares (the protocol's, the
// node's) is answered busy, "try another provider": the provider is loaded
// by others, and fewer requests from this uploader would not help.
func (c *storeConn) refuseBudget(ex *storeExchange, err error) {
	c.h.metrics.overBudget.Inc()
	c.h.metrics.result(ex, "refused")
	r := &pb.StoreReply{Status: pb.Status_STATUS_REFUSED,
		Reason: fmt.Sprintf("provider is at its memory budget (%v); retry later with fewer requests in flight", err)}
	if scope, shared := p2p.BudgetScope(err); shared {
		r.Busy = true
		r.Reason = fmt.Sprintf("provider busy: its memory budget for all peers (scope %q) is spent; try another provider", scope)
	}
	c.end(ex, r)
}

// workerPanicked turns a panic on ex, contained and counted by the
// framework, into FAILED and a reset stream, so a peer whose data trips a
// bug cannot crash the node.
func (c *storeConn) workerPanicked(ex *storeExchange) {
	_ = c.proto.Go(p2p.StoreProtocol, c.remote, func() {
		if ex.kind == kindBind { // the same BIND would trip the same bug
			c.bindFailed(ex, false, "provider internal error", nil)
			return
		}
		c.failed(ex, "provider internal error")
	})
	_ = c.s.Reset()
}

// open registers a new exchange, refusing one over the in-flight limit or
// reusing an open id (which resets the stream).
func (c *storeConn) open(id uint64, kind exchangeKind) (*storeExchange, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.exchanges[id]; busy {
		return nil, false, fmt.Errorf("%w: id %d reused while its exchange is open", ErrProtocol, id)
	}
	st := exAuthorizing
	if kind != kindChunk {
		st = exBinding
	}
	ex := &storeExchange{id: id, state: st, kind: kind}
	if len(c.exchanges) >= MaxChunksInFlight {
		return ex, false, nil
	}
	c.exchanges[id] = ex
	return ex, true, nil
}

// unbufferLocked drops an exchange's bytes from the stream's counts. Call
// with c.mu.
func (c *storeConn) unbufferLocked(ex *storeExchange) {
	if ex.mem > 0 {
		p2p.Release(c.s, ex.mem)
		ex.mem = 0
	}
	c.partial -= ex.partial
	ex.partial = 0
	if ex.committing > 0 {
		c.committing -= ex.committing
		ex.committing = 0
		c.drained.Broadcast()
	}
}

// idle reports whether no exchange is open.
func (c *storeConn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.exchanges) == 0
}

// state returns the exchange's state.
func (c *storeConn) state(ex *storeExchange) exchangeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ex.state
}

// lookup returns the open exchange of id, or nil.
func (c *storeConn) lookup(id uint64) *storeExchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exchanges[id]
}

// reserve checks that a streamed upload's session may grow by the chunk and
// holds the bytes until the chunk is stored or the exchange ends.
func (h *Handler) reserve(ctx context.Context, ex *storeExchange) error {
	total, stored, err := h.countSession(ex)
	if err != nil {
		return err
	}
	if err := h.authorizeSession(ctx, ex, total, stored); err != nil {
		h.release(ex)
		return err
	}
	return nil
}

// checkChunkCID accepts only chunk IDs: CIDv1, raw codec, sha2-256.
func checkChunkCID(c cid.Cid) error {
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size {
		return fmt.Errorf("%s is not a chunk ID (CIDv1, raw, sha2-256)", c)
	}
	return nil
}

func proofSize(blocks [][]byte) int {
	n := 0
	for _, b := range blocks {
		n += len(b)
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// metrics are the store handler's Prometheus collectors.
type metrics struct {
	chunks     *prometheus.CounterVec
	binds      *prometheus.CounterVec
	drops      *prometheus.CounterVec
	bytesIn    prometheus.Counter
	overBudget prometheus.Counter
	hops       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "chunks_total",
			Help: "Chunk exchanges on the store protocol by result: stored, already_stored, refused, failed.",
		}, []string{"result"}),
		binds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "binds_total",
			Help: "BIND requests by result: bound, size_mismatch, refused, failed.",
		}, []string{"result"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "drops_total",
			Help: "DROP requests by result: dropped, refused, failed.",
		}, []string{"result"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "bytes_in_total",
			Help: "Chunk bytes received in store data frames.",
		}),
		overBudget: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "over_budget_total",
			Help: "Requests refused because the stream, its peer or the node was at its memory budget.",
		}),
		hops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_store", Name: "forwarded_hops_total",
			Help: "Pipeline hops after this provider of the chunks it forwarded, by result: signed (a receipt relayed), failed.",
		}, []string{"result"}),
	}
	if reg != nil {
		m.chunks = metricsutil.MustRegister(reg, m.chunks)
		m.binds = metricsutil.MustRegister(reg, m.binds)
		m.drops = metricsutil.MustRegister(reg, m.drops)
		m.bytesIn = metricsutil.MustRegister(reg, m.bytesIn)
		m.overBudget = metricsutil.MustRegister(reg, m.overBudget)
		m.hops = metricsutil.MustRegister(reg, m.hops)
	}
	return m
}

func (m *metrics) chunk(result string) { m.chunks.WithLabelValues(result).Inc() }
func (m *metrics) bind(result string)  { m.binds.WithLabelValues(result).Inc() }

// result counts the end of exchange ex: a chunk's, a BIND's or a DROP's.
func (m *metrics) result(ex *storeExchange, result string) {
	switch ex.kind {
	case kindBind:
		m.bind(result)
	case kindDrop:
		m.drops.WithLabelValues(result).Inc()
	default:
		m.chunk(result)
	}
}
