package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Blocks is what the handler reads: the node's block store. Get returns the
// block's bytes checked for damage on disk (a checksum is enough: the
// receiver verifies them against c), or an error wrapping ErrNotFound (not
// held) or ErrCorrupt (held but damaged, and quarantined by then).
type Blocks interface {
	Has(c cid.Cid) (bool, error)
	Get(c cid.Cid) ([]byte, error)
}

// Recycler is what a Blocks implementation may offer to reuse the buffers
// Get returns: the handler hands each back with Recycle once the reply
// carrying it is written (or dropped), and touches it no more.
type Recycler interface {
	Recycle(data []byte)
}

// Policy decides which blocks a provider serves: only blocks of objects in
// bags the node stores. The node implements it. HAVE asks Serves; GET asks
// ServeRead instead when the policy is also a ReadPolicy, else Serves and
// then RecordRead when it is a ReadRecorder.
type Policy interface {
	Serves(ctx context.Context, c cid.Cid) bool
}

// ReadPolicy is what a Policy may offer to decide a GET and record its read
// from one look-up, where Serves then RecordRead would look c up twice.
// ServeRead reports whether a GET of c is served and, if so, returns done
// (nil when there is nothing to record). The handler calls done once, when
// it has built the reply carrying the block's bytes (status OK), before
// that reply is written: a GET whose write then fails has still called
// done. It never calls done after a HAVE, a refused or failed GET or one
// whose block is not found; done then records what the look-up that
// decided serving found. Not calling done must leak nothing: ServeRead
// holds no lock or resource for it. A Policy that implements ReadPolicy
// gets no RecordRead calls from GETs.
type ReadPolicy interface {
	ServeRead(ctx context.Context, c cid.Cid) (done func(), ok bool)
}

// plainReads is the ReadPolicy of a Policy without one: Serves decides and
// RecordRead, when the policy is a ReadRecorder, records.
type plainReads struct{ p Policy }

func (r plainReads) ServeRead(ctx context.Context, c cid.Cid) (func(), bool) {
	if !r.p.Serves(ctx, c) {
		return nil, false
	}
	if rec, ok := r.p.(ReadRecorder); ok {
		return func() { rec.RecordRead(c) }, true
	}
	return nil, true
}

// readPolicy returns what GETs ask: p itself when it is a ReadPolicy.
func readPolicy(p Policy) ReadPolicy {
	if rp, ok := p.(ReadPolicy); ok {
		return rp
	}
	return plainReads{p}
}

// Handler serves /satchel/fetch/1.0.0 from a node's blocks: HAVE answers
// which blocks it holds and serves, GET sends a block's bytes (or a range).
// A whole block is read and checked for damage on every request (see
// Blocks); a range is read alone from a block checked within VerifiedFor
// (see RangeReader), or read whole within the peer's verification budget
// (WithRangeVerifyBudget, WithRangeVerifyNodeBudget). Each GET reserves its
// reply's memory in the stream's resource scope first, at most
// MaxHeldGETs of a stream at once, and is REFUSED when the budget has no room
// and no stalled stream can be reset to make it (WithStallEviction), or when
// its peer, or the peers at its address, in its IPv4 /24 or in its IPv6 /48
// or /32, have reset streams leaving too many replies unsent
// (WithAbandonBudget, WithAbandonAddrShare, WithAbandonWideShare,
// WithAbandonNetShare). A block
// found corrupt is answered FAILED and reported through WithCorruptBlock so
// the node repairs it from a peer.
type Handler struct {
	blocks   Blocks
	policy   Policy     // asked by HAVE
	reads    ReadPolicy // asked by GET: policy, or plainReads of it
	cfg      config
	log      *slog.Logger
	metrics  *metrics
	verified *verifiedRecord
	budget   *verifyBudget  // of ranged GETs that read whole blocks
	abandons *abandonBudget // of peers that reset streams with replies unsent
	streams  streamSet      // being served, for eviction

	p2p.Registration // where it is served
}

// Option configures NewHandler.
type Option func(*config)

type config struct {
	onCorrupt   func(cid.Cid)
	reg         prometheus.Registerer
	log         *slog.Logger
	verifyRate  int64
	verifyBurst int64
	nodeRate    int64
	nodeBurst   int64
	stallAfter  time.Duration // evict streams stalled this long; < 0: never
	// abandonRate and abandonBurst are a peer's budget of reply bytes its
	// resets leave unsent (WithAbandonBudget).
	abandonRate  int64
	abandonBurst int64
	// abandonShares are each tier's budget in budgets of the tier below
	// (WithAbandonAddrShare, WithAbandonWideShare, WithAbandonNetShare).
	abandonShares [tiers]int
	heldGETs      int // a stream's GETs holding memory; < 1: MaxHeldGETs (tests only)
}

// WithCorruptBlock sets fn, called (from the serving goroutine; it must not
// block for long) with every block found corrupt while serving. The node
// should fetch it again from a peer.
func WithCorruptBlock(fn func(c cid.Cid)) Option {
	return func(c *config) { c.onCorrupt = fn }
}

// WithMetrics registers the handler's Prometheus collectors on reg:
// satchel_provider_fetch_requests_total{kind,status},
// satchel_provider_fetch_bytes_out_total,
// satchel_provider_fetch_range_verify_refused_total{budget},
// satchel_provider_fetch_streams_evicted_total and
// satchel_provider_fetch_abandoned_bytes_total.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) { c.reg = reg }
}

// WithLogger sets the handler's logger (records carry component=fetch); the
// default is slog.Default(). It logs at Debug, and at Warn for a corrupt
// block.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// NewHandler returns a handler serving the blocks policy allows. Register it
// on a host's stream framework.
func NewHandler(blocks Blocks, policy Policy, opts ...Option) *Handler {
	cfg := config{stallAfter: DefaultStallEviction}
	for _, o := range opts {
		o(&cfg)
	}
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}
	return &Handler{
		blocks:   blocks,
		policy:   policy,
		reads:    readPolicy(policy),
		cfg:      cfg,
		log:      log.With("component", "fetch"),
		metrics:  newMetrics(cfg.reg),
		verified: newVerifiedRecord(),
		budget:   newVerifyBudget(cfg.verifyRate, cfg.verifyBurst, cfg.nodeRate, cfg.nodeBurst),
		abandons: newAbandonBudget(cfg.abandonRate, cfg.abandonBurst, cfg.abandonShares),
		streams:  streamSet{m: make(map[*stream]struct{})},
	}
}

// Register serves the fetch protocol on p (a host's Protocol). Close stops
// serving.
func (h *Handler) Register(p *p2p.Protocol) {
	h.Serve(p, p2p.FetchProtocol, h.serveStream, p2p.WithIdleTimeout(IdleTimeout))
}

// job is one request being answered; replies go out in request order.
type job struct {
	done  chan struct{}
	reply *pb.FetchReply
	buf   []byte // the block Get read, to recycle once the reply is written
	mem   int    // reserved in the stream's scope until the reply is written
}

// getMemory is what a GET reserves before it is answered: the largest block
// it may read whole.
const getMemory = MaxBlockSize + 64<<10

// stream is one stream being served.
type stream struct {
	h     *Handler
	proto *p2p.Protocol
	s     network.Stream
	from  origin // whom unsent replies are charged to
	// held has a token for each GET holding memory (MaxHeldGETs at most):
	// the reader takes one before it reserves, the writer gives it back
	// once the reply is written.
	held chan struct{}
	// writing is when the write of the current reply began (UnixNano), 0
	// between writes; reserved is what the stream's GETs hold. Eviction
	// reads both.
	writing  atomic.Int64
	reserved atomic.Int64
	evicted  atomic.Bool
	done     chan struct{} // closed once the stream holds nothing
}

// serveStream answers the requests of one stream. Replies are prepared
// concurrently and written in order: up to MaxInFlight requests are read
// ahead, and of them up to MaxHeldGETs GETs hold a reply's memory, so a
// reader that stops reading pins that much and no more.
func (h *Handler) serveStream(ctx context.Context, s network.Stream) error {
	st := &stream{h: h, proto: h.Protocol(), s: s, from: originOf(s), held: make(chan struct{}, h.heldGETs()), done: make(chan struct{})}
	if st.proto == nil {
		return errors.New("fetch: handler closed")
	}
	h.streams.add(st)
	defer func() {
		h.streams.remove(st)
		close(st.done)
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *job, MaxInFlight)
	writerErr := make(chan error, 1)
	go func() { writerErr <- st.writeReplies(queue, cancel) }()

	var workers sync.WaitGroup
	err := st.readRequests(ctx, queue, &workers)
	close(queue)
	if err != nil {
		cancel()
	}
	workers.Wait()
	if werr := <-writerErr; err == nil {
		err = werr
	}
	return err
}

// heldGETs is how many GETs of a stream may hold memory at once.
func (h *Handler) heldGETs() int {
	if h.cfg.heldGETs < 1 {
		return MaxHeldGETs
	}
	return h.cfg.heldGETs
}

// readRequests reads requests until the reader closes its side or the
// stream idles, queueing a job for each and preparing its reply on a
// goroutine counted by workers. A GET waits until fewer than MaxHeldGETs
// of the stream hold memory before it reserves its own. A panic while
// preparing a reply is contained by the framework and answered FAILED.
func (st *stream) readRequests(ctx context.Context, queue chan<- *job, workers *sync.WaitGroup) error {
	fr := st.proto.NewFrameReader(st.s, MaxRequestFrame, IdleTimeout)
	remote := st.s.Conn().RemotePeer()
	for {
		var req pb.FetchRequest
		if err := readRequest(fr, &req); err != nil {
			if errors.Is(err, ErrProtocol) {
				st.h.metrics.request("malformed", pb.FetchStatus_FETCH_STATUS_REFUSED)
			}
			if errors.Is(err, io.EOF) || p2p.IsTimeout(err) {
				return nil // closed, or idle: end cleanly
			}
			return err
		}
		j := &job{done: make(chan struct{})}
		if _, isGet := req.Body.(*pb.FetchRequest_Get); isGet {
			if spent, _ := st.h.abandons.state(st.from); spent {
				st.h.metrics.request("get", pb.FetchStatus_FETCH_STATUS_REFUSED)
				if !st.queueRefusal(ctx, queue, j, req.Id, abandonRefusal()) {
					return ctx.Err()
				}
				continue
			}
			select {
			case st.held <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := st.reserveGET(ctx); err != nil {
				<-st.held
				st.h.metrics.request("get", pb.FetchStatus_FETCH_STATUS_REFUSED)
				if !st.queueRefusal(ctx, queue, j, req.Id, budgetRefusal(err)) {
					return ctx.Err()
				}
				continue
			}
			j.mem = getMemory
		}
		select {
		case queue <- j:
		case <-ctx.Done():
			st.release(j)
			return ctx.Err()
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer close(j.done)
			err := st.proto.Go(p2p.FetchProtocol, remote, func() { j.reply, j.buf = st.h.answer(ctx, remote, &req) })
			if err != nil {
				j.reply = &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_FAILED, Reason: "internal error"}
			}
			j.reply.Id = req.Id
		}()
	}
}

// queueRefusal queues j answered with r, a refusal of request id; false
// means ctx ended first.
func (st *stream) queueRefusal(ctx context.Context, queue chan<- *job, j *job, id uint64, r *pb.FetchReply) bool {
	j.reply = r
	j.reply.Id = id
	close(j.done)
	select {
	case queue <- j:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeReplies writes the jobs' replies in queue order as each is ready.
// After a write error it cancels the stream's work, resets the stream and
// drains the queue, charging the block bytes it leaves unsent to the
// peer's abandonment budget unless the stream was evicted; it returns that
// error.
func (st *stream) writeReplies(queue <-chan *job, cancel context.CancelFunc) error {
	fw := st.proto.NewFrameWriter(st.s, IdleTimeout)
	var err error
	var abandoned int64
	defer func() {
		if abandoned > 0 && !st.evicted.Load() {
			st.h.metrics.abandoned.Add(float64(abandoned))
			st.h.abandons.charge(st.from, abandoned)
		}
	}()
	for j := range queue {
		<-j.done
		if err != nil {
			abandoned += unsent(j)
			st.h.recycle(j)
			st.release(j)
			continue // drain
		}
		st.writing.Store(time.Now().UnixNano())
		if err = writeFetchReply(fw, j.reply); err == nil {
			err = fw.Flush()
		}
		st.writing.Store(0)
		if err != nil {
			abandoned += unsent(j)
		} else if j.reply.Status == pb.FetchStatus_FETCH_STATUS_OK {
			st.h.metrics.bytesOut.Add(float64(len(j.reply.Data))) // sent, not just prepared
		}
		st.h.recycle(j)
		st.release(j)
		if err != nil {
			cancel()
			_ = st.s.Reset()
		}
	}
	return err
}

// release returns the memory j's GET reserved, and its token of held.
func (st *stream) release(j *job) {
	if j.mem == 0 {
		return
	}
	p2p.Release(st.s, j.mem)
	st.reserved.Add(-int64(j.mem))
	j.mem = 0
	<-st.held
}

// recycle hands the block a written (or dropped) reply carried back to
// the blocks, when they take buffers back.
func (h *Handler) recycle(j *job) {
	if j.buf == nil {
		return
	}
	if r, ok := h.blocks.(Recycler); ok {
		j.reply.Data = nil
		r.Recycle(j.buf)
	}
	j.buf = nil
}

// answer prepares the reply to one request, and returns the buffer Get
// read the block into, if any, to recycle once the reply is written.
func (h *Handler) answer(ctx context.Context, remote peer.ID, req *pb.FetchRequest) (*pb.FetchReply, []byte) {
	switch body := req.Body.(type) {
	case *pb.FetchRequest_Have:
		r := h.have(ctx, body.Have)
		h.metrics.request("have", r.Status)
		return r, nil
	case *pb.FetchRequest_Get:
		r, buf := h.get(ctx, remote, body.Get)
		h.metrics.request("get", r.Status)
		return r, buf
	default:
		h.metrics.request("unknown", pb.FetchStatus_FETCH_STATUS_REFUSED)
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Reason: "request has no body"}, nil
	}
}

func (h *Handler) have(ctx context.Context, req *pb.HaveRequest) *pb.FetchReply {
	if len(req.Cids) > MaxHaveCIDs {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED,
			Reason: fmt.Sprintf("%d CIDs exceed the %d-CID limit of one HAVE", len(req.Cids), MaxHaveCIDs)}
	}
	flags := make([]bool, len(req.Cids))
	for i, b := range req.Cids {
		c, err := cid.Cast(b)
		if err != nil {
			continue
		}
		held, err := h.blocks.Has(c)
		flags[i] = err == nil && held && h.policy.Serves(ctx, c)
	}
	return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_OK, Have: flags}
}

// get answers a GET from remote, returning with the reply the buffer the
// whole block was read into, if any. A range of a block not verified
// lately is read whole within remote's verification budget.
func (h *Handler) get(ctx context.Context, remote peer.ID, req *pb.GetRequest) (*pb.FetchReply, []byte) {
	c, err := cid.Cast(req.Cid)
	if err != nil {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Reason: fmt.Sprintf("invalid CID: %v", err)}, nil
	}
	done, ok := h.reads.ServeRead(ctx, c)
	if !ok {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_NOT_FOUND, Reason: fmt.Sprintf("%s is not in a bag this node stores", c)}, nil
	}
	n := req.Length
	if n == 0 || n > MaxGetBytes {
		n = MaxGetBytes
	}
	ranged := req.Offset != 0 || req.Length != 0
	if r := h.getRange(c, req.Offset, n, ranged); r != nil {
		return served(r, done), nil
	}
	var cost uint64 // what the read cost beyond what is sent
	if ranged {
		hold, r := h.takeVerify(remote, c)
		if r != nil {
			return r, nil
		}
		defer func() { h.budget.refund(hold, MaxGetBytes-min(cost, MaxGetBytes)) }()
	}
	data, err := h.blocks.Get(c)
	switch {
	case errors.Is(err, ErrNotFound):
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_NOT_FOUND, Reason: fmt.Sprintf("%s is not held", c)}, nil
	case errors.Is(err, ErrCorrupt):
		h.verified.forget(c)
		h.log.Warn("corrupt block found while serving", "cid", c)
		if h.cfg.onCorrupt != nil {
			h.cfg.onCorrupt(c)
		}
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_FAILED, Reason: fmt.Sprintf("%s is corrupt here and being repaired; read it from another provider", c)}, nil
	case err != nil:
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_FAILED, Reason: fmt.Sprintf("%s cannot be read: %v", c, err)}, nil
	}
	h.verified.mark(c)
	size := uint64(len(data))
	cost = size - min(n, size-min(req.Offset, size))
	if req.Offset > size {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Size: size,
			Reason: fmt.Sprintf("offset %d is past the end of the %d-byte block", req.Offset, size)}, data
	}
	n = min(n, size-req.Offset)
	return served(&pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data[req.Offset : req.Offset+n], Size: size}, done), data
}

// getRange answers a ranged GET from the range alone when the blocks can
// read ranges and c was verified whole within VerifiedFor; nil means read
// the whole block.
func (h *Handler) getRange(c cid.Cid, off, n uint64, ranged bool) *pb.FetchReply {
	rr, ok := h.blocks.(RangeReader)
	if !ok || !ranged || !h.verified.fresh(c) {
		return nil
	}
	data, size, err := rr.ReadRange(c, off, n)
	switch {
	case err == nil:
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data, Size: size}
	case errors.Is(err, ErrNotFound):
		h.verified.forget(c)
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_NOT_FOUND, Reason: fmt.Sprintf("%s is not held", c)}
	case off > size && size > 0:
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Size: size,
			Reason: fmt.Sprintf("offset %d is past the end of the %d-byte block", off, size)}
	}
	// Anything else (a short file, say): the whole, verified read decides.
	h.verified.forget(c)
	return nil
}

// served records a GET's read through done (from ServeRead) when r
// carries the block's bytes, and returns r. It runs when the reply is
// built, before it is written: a GET whose write fails is recorded all the
// same (for a provider, that keeps the object a little longer).
func served(r *pb.FetchReply, done func()) *pb.FetchReply {
	if done != nil && r.Status == pb.FetchStatus_FETCH_STATUS_OK {
		done()
	}
	return r
}

// writeFetchReply writes a reply; one carrying data is encoded by hand so the
// block's bytes go out without a copy into a marshalled message.
func writeFetchReply(w *p2p.FrameWriter, r *pb.FetchReply) error {
	if len(r.Data) < 64<<10 {
		return w.WriteMsg(r)
	}
	var hdr []byte
	hdr = protowire.AppendTag(hdr, 1, protowire.VarintType)
	hdr = protowire.AppendVarint(hdr, r.Id)
	hdr = protowire.AppendTag(hdr, 2, protowire.VarintType)
	hdr = protowire.AppendVarint(hdr, uint64(r.Status))
	hdr = protowire.AppendTag(hdr, 6, protowire.VarintType)
	hdr = protowire.AppendVarint(hdr, r.Size)
	hdr = protowire.AppendTag(hdr, 5, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(r.Data)))
	return w.WriteFrame(hdr, r.Data)
}
