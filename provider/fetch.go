package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/wire"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Errors of the fetch protocol's caller side, one per provider answer.
var (
	// ErrNotServed means the provider answered NOT_FOUND: it does not hold
	// the block, or not for a bag it stores.
	ErrNotServed = errors.New("provider: block not served")
	// ErrBlockFailed means the provider answered FAILED: it holds the block
	// but cannot read it (it is corrupt and being repaired).
	ErrBlockFailed = errors.New("provider: block unreadable at the provider")
	// ErrFetchRefused means the provider answered REFUSED: the request was
	// malformed or over a limit.
	ErrFetchRefused = errors.New("provider: fetch request refused")
	// ErrCIDMismatch means a provider sent bytes that do not hash to the
	// block's CID. It is chunker.ErrCIDMismatch (and so
	// blockstore.ErrCIDMismatch).
	ErrCIDMismatch = chunker.ErrCIDMismatch
	// ErrBlockTooLarge means a provider announced a block larger than
	// MaxBlockSize; it wraps ErrProtocol.
	ErrBlockTooLarge = fmt.Errorf("%w: block over the size limit", ErrProtocol)
)

// ---------------------------------------------------------------------------
// Caller side

// FetchClient reads blocks from providers over /satchel/fetch/1.0.0. It
// keeps one stream per provider, reused across calls, with up to
// MaxFetchInFlight requests pipelined on it; calls beyond that wait. It is
// safe for concurrent use; Close releases the streams.
type FetchClient struct {
	h host.Host

	mu      sync.Mutex
	closed  bool
	conns   map[peer.ID]*fetchConn
	opening map[peer.ID]chan struct{} // closed when the stream being opened is ready or failed
	wg      sync.WaitGroup            // reader goroutines
}

// NewFetchClient returns a FetchClient opening streams from h.
func NewFetchClient(h host.Host) *FetchClient {
	return &FetchClient{h: h, conns: make(map[peer.ID]*fetchConn), opening: make(map[peer.ID]chan struct{})}
}

// Have asks p which of cids it holds and serves, one flag per CID in order.
// Lists longer than MaxHaveCIDs are asked in several requests.
func (f *FetchClient) Have(ctx context.Context, p peer.ID, cids []cid.Cid) ([]bool, error) {
	out := make([]bool, 0, len(cids))
	for start := 0; start < len(cids) || start == 0; start += MaxHaveCIDs {
		batch := cids[start:min(start+MaxHaveCIDs, len(cids))]
		req := &wire.HaveRequest{Cids: make([][]byte, len(batch))}
		for i, c := range batch {
			req.Cids[i] = c.Bytes()
		}
		r, err := f.call(ctx, p, &wire.FetchRequest{Body: &wire.FetchRequest_Have{Have: req}})
		if err != nil {
			return nil, err
		}
		if err := fetchStatusErr(r, "have"); err != nil {
			return nil, err
		}
		if len(r.Have) != len(batch) {
			return nil, fmt.Errorf("%w: %s answered %d flags for %d CIDs", ErrProtocol, p, len(r.Have), len(batch))
		}
		out = append(out, r.Have...)
		if len(cids) == 0 {
			break
		}
	}
	return out, nil
}

// GetBlock reads the whole block c from p and verifies it against c: bytes
// that do not match give an error wrapping ErrCIDMismatch (a lying or
// corrupt provider; try another).
func (f *FetchClient) GetBlock(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	data, size, err := f.GetRange(ctx, p, c, 0, 0)
	if err != nil {
		return nil, err
	}
	// The announced size is the peer's word: bound it before collecting
	// replies, so a lying peer cannot make us buffer without end.
	if size > MaxBlockSize {
		return nil, fmt.Errorf("%w: %s announced %d bytes for %s, over the %d-byte block limit", ErrBlockTooLarge, p, size, c, MaxBlockSize)
	}
	for uint64(len(data)) < size { // a block larger than one reply
		more, again, err := f.GetRange(ctx, p, c, uint64(len(data)), 0)
		if err != nil {
			return nil, err
		}
		if again != size {
			return nil, fmt.Errorf("%w: %s announced %d bytes for %s, then %d", ErrProtocol, p, size, c, again)
		}
		if len(more) == 0 {
			return nil, fmt.Errorf("%w: %s sent no bytes at offset %d of %s", ErrProtocol, p, len(data), c)
		}
		data = append(data, more...)
	}
	if uint64(len(data)) != size {
		return nil, fmt.Errorf("%w: %s sent %d bytes of %s, announced %d", ErrCIDMismatch, p, len(data), c, size)
	}
	if err := chunker.VerifyChunk(c, data); err != nil {
		return nil, fmt.Errorf("provider: block from %s: %w", p, err)
	}
	return data, nil
}

// GetRange reads up to n bytes of block c from p starting at off (n = 0:
// to the end), at most MaxGetBytes, and returns them with the block's whole
// size. A range cannot be verified against the CID; read whole blocks
// (GetBlock) to verify.
func (f *FetchClient) GetRange(ctx context.Context, p peer.ID, c cid.Cid, off, n uint64) (data []byte, size uint64, err error) {
	if n > MaxGetBytes {
		return nil, 0, fmt.Errorf("provider: get: %d bytes exceed the %d-byte limit of one request", n, MaxGetBytes)
	}
	r, err := f.call(ctx, p, &wire.FetchRequest{Body: &wire.FetchRequest_Get{Get: &wire.GetRequest{Cid: c.Bytes(), Offset: off, Length: n}}})
	if err != nil {
		return nil, 0, err
	}
	if err := fetchStatusErr(r, "get "+c.String()); err != nil {
		return nil, 0, err
	}
	want := r.Size - min(off, r.Size)
	if n != 0 {
		want = min(want, n)
	}
	want = min(want, MaxGetBytes)
	if uint64(len(r.Data)) != want {
		return nil, 0, fmt.Errorf("%w: %s sent %d bytes of %s at %d, expected %d of %d", ErrProtocol, p, len(r.Data), c, off, want, r.Size)
	}
	return r.Data, r.Size, nil
}

func fetchStatusErr(r *wire.FetchReply, what string) error {
	switch r.Status {
	case wire.FetchStatus_FETCH_STATUS_OK:
		return nil
	case wire.FetchStatus_FETCH_STATUS_NOT_FOUND:
		return fmt.Errorf("%w: %s: %s", ErrNotServed, what, r.Reason)
	case wire.FetchStatus_FETCH_STATUS_FAILED:
		return fmt.Errorf("%w: %s: %s", ErrBlockFailed, what, r.Reason)
	case wire.FetchStatus_FETCH_STATUS_REFUSED:
		return fmt.Errorf("%w: %s: %s", ErrFetchRefused, what, r.Reason)
	default:
		return fmt.Errorf("%w: %s: status %v", ErrProtocol, what, r.Status)
	}
}

// Close closes every stream and waits for their readers. Calls in flight
// fail; later calls fail with ErrStreamClosed.
func (f *FetchClient) Close() error {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.conns = make(map[peer.ID]*fetchConn)
	f.mu.Unlock()
	for _, c := range conns {
		c.fail(fmt.Errorf("%w: client closed", ErrStreamClosed))
		_ = c.s.Reset()
	}
	f.wg.Wait()
	return nil
}

// call sends one request and returns its reply, retrying once on a fresh
// stream when a reused stream turned out dead before answering (the
// provider closes idle streams).
func (f *FetchClient) call(ctx context.Context, p peer.ID, req *wire.FetchRequest) (*wire.FetchReply, error) {
	for attempt := 0; ; attempt++ {
		c, fresh, err := f.conn(ctx, p)
		if err != nil {
			return nil, err
		}
		r, answered, err := c.call(ctx, req)
		if err == nil {
			return r, nil
		}
		if answered || fresh || attempt > 0 || ctx.Err() != nil || !errors.Is(err, ErrStreamClosed) {
			return nil, err
		}
	}
}

// conn returns the stream to p, opening one if there is none or it failed;
// fresh reports a stream just opened. Only one caller opens a stream to a
// peer at a time; the others wait for it, and a slow dial to one peer holds
// up no other.
func (f *FetchClient) conn(ctx context.Context, p peer.ID) (c *fetchConn, fresh bool, err error) {
	c, done, err := f.claim(ctx, p)
	if c != nil || err != nil {
		return c, false, err
	}
	defer func() {
		f.mu.Lock()
		delete(f.opening, p)
		f.mu.Unlock()
		close(done)
	}()
	if c, err = f.dial(ctx, p); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// claim returns the usable stream to p or, when there is none, makes the
// caller the one to open it: it returns done, to close once the stream is
// ready or failed. Meanwhile another caller opening one is waited for.
func (f *FetchClient) claim(ctx context.Context, p peer.ID) (*fetchConn, chan struct{}, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, nil, fmt.Errorf("%w: client closed", ErrStreamClosed)
		}
		if c := f.conns[p]; c != nil {
			if c.usable() {
				f.mu.Unlock()
				return c, nil, nil
			}
			delete(f.conns, p)
			c.close()
		}
		wait, busy := f.opening[p]
		if !busy {
			done := make(chan struct{})
			f.opening[p] = done
			f.mu.Unlock()
			return nil, done, nil
		}
		f.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// dial opens a stream to p, records it as p's and starts its reader.
func (f *FetchClient) dial(ctx context.Context, p peer.ID) (*fetchConn, error) {
	s, err := f.h.NewStream(ctx, p, p2p.FetchProtocol)
	if err != nil {
		return nil, fmt.Errorf("provider: open fetch stream to %s: %w", p, err)
	}
	c := &fetchConn{
		p:      p,
		s:      s,
		bw:     bufio.NewWriterSize(s, 4<<10),
		slots:  make(chan struct{}, MaxFetchInFlight),
		failed: make(chan struct{}),
		used:   time.Now(),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: client closed", ErrStreamClosed)
	}
	f.conns[p] = c
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		c.readLoop()
	}()
	return c, nil
}

// fetchConn is one pipelined fetch stream to a provider.
type fetchConn struct {
	p  peer.ID
	s  network.Stream
	bw *bufio.Writer

	wmu   sync.Mutex // serialises writes; appending to queue happens under it too
	slots chan struct{}

	mu     sync.Mutex
	queue  []*fetchCall // requests sent, in order, awaiting replies
	nextID uint64
	err    error
	failed chan struct{}
	used   time.Time
}

type fetchCall struct {
	id    uint64
	reply chan *wire.FetchReply // cap 1
}

// usable reports whether the stream can take another request: not failed,
// and not idle so long that the provider may be closing it.
func (c *fetchConn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && (len(c.queue) > 0 || time.Since(c.used) < StreamIdleTimeout/2)
}

func (c *fetchConn) close() {
	c.fail(fmt.Errorf("%w: idle", ErrStreamClosed))
	_ = c.s.Close()
}

func (c *fetchConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.failed)
	}
}

func (c *fetchConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// call sends req and waits for its reply. answered reports whether the
// provider answered anything on this stream since the request was sent
// (a failure before that may be retried on a new stream).
func (c *fetchConn) call(ctx context.Context, req *wire.FetchRequest) (*wire.FetchReply, bool, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-c.failed:
		return nil, false, c.failure()
	}
	call := &fetchCall{reply: make(chan *wire.FetchReply, 1)}
	c.wmu.Lock()
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		<-c.slots
		return nil, false, err
	}
	c.nextID++
	call.id = c.nextID
	req.Id = call.id
	if len(c.queue) == 0 {
		_ = c.s.SetReadDeadline(idleDeadline())
	}
	c.queue = append(c.queue, call)
	c.used = time.Now()
	c.mu.Unlock()
	_ = c.s.SetWriteDeadline(idleDeadline())
	err := p2p.WriteMsg(c.bw, req)
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: write to %s: %w", ErrStreamClosed, c.p, err))
		_ = c.s.Reset()
		return nil, false, c.failure()
	}
	select {
	case r := <-call.reply:
		return r, true, nil
	case <-c.failed:
		select {
		case r := <-call.reply:
			return r, true, nil
		default:
		}
		return nil, false, c.failure()
	case <-ctx.Done():
		// The reader discards the reply when it comes.
		return nil, false, ctx.Err()
	}
}

// readLoop hands replies, which come in request order, to their calls.
func (c *fetchConn) readLoop() {
	br := bufio.NewReaderSize(c.s, 64<<10)
	for {
		var r wire.FetchReply
		err := readFetchReply(br, &r)
		if err != nil {
			c.fail(readFailure(c.p, err))
			_ = c.s.Reset()
			return
		}
		c.mu.Lock()
		if len(c.queue) == 0 || c.queue[0].id != r.Id {
			c.mu.Unlock()
			c.fail(fmt.Errorf("%w: %s answered request %d out of order", ErrProtocol, c.p, r.Id))
			_ = c.s.Reset()
			return
		}
		call := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			_ = c.s.SetReadDeadline(time.Time{})
		} else {
			_ = c.s.SetReadDeadline(idleDeadline())
		}
		c.used = time.Now()
		c.mu.Unlock()
		call.reply <- &r
		<-c.slots
	}
}

// readFetchReply reads one FetchReply frame, checking the announced length
// against MaxFrame before allocating, and decodes it without copying the
// data bytes out of the frame.
func readFetchReply(br *bufio.Reader, r *wire.FetchReply) error {
	return readFrame(br, r, "fetch reply", func(body []byte) bool { return decodeFetchData(body, r) })
}

// decodeFetchData decodes a FetchReply of id, status, reason, data and size
// only, aliasing data into body; false means decode it with proto.Unmarshal.
func decodeFetchData(body []byte, r *wire.FetchReply) bool {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return false
		}
		body = body[n:]
		switch {
		case typ == protowire.VarintType && (num == 1 || num == 2 || num == 6):
			v, m := protowire.ConsumeVarint(body)
			if m < 0 {
				return false
			}
			body = body[m:]
			switch num {
			case 1:
				r.Id = v
			case 2:
				r.Status = wire.FetchStatus(int32(v))
			case 6:
				r.Size = v
			}
		case typ == protowire.BytesType && (num == 3 || num == 5):
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return false
			}
			body = body[m:]
			if num == 3 {
				r.Reason = string(v)
			} else {
				r.Data = v
			}
		default:
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Handler side

// FetchPolicy decides which blocks a provider serves: only blocks of objects
// in bags this node stores. The node implements it.
type FetchPolicy interface {
	Serves(ctx context.Context, c cid.Cid) bool
}

// FetchHandler serves /satchel/fetch/1.0.0 from a block store: HAVE answers
// which blocks it holds and serves, GET sends a block's bytes (or a range),
// read and verified against the CID on every request. A block found corrupt
// is answered FAILED, quarantined by the store, and reported through
// WithCorruptBlock so the node repairs it from a peer.
type FetchHandler struct {
	bs      *blockstore.Store
	policy  FetchPolicy
	cfg     fetchConfig
	metrics *fetchMetrics

	*streamServer
}

// FetchOption configures NewFetchHandler.
type FetchOption func(*fetchConfig)

type fetchConfig struct {
	onCorrupt func(cid.Cid)
	reg       prometheus.Registerer
	log       *slog.Logger
}

// WithCorruptBlock sets fn, called (from the serving goroutine; it must not
// block for long) with every block found corrupt while serving. The store has
// quarantined the block by then; the node should fetch it again from a peer.
func WithCorruptBlock(fn func(c cid.Cid)) FetchOption {
	return func(c *fetchConfig) { c.onCorrupt = fn }
}

// WithFetchMetrics registers the handler's Prometheus collectors on reg:
// satchel_provider_fetch_requests_total{kind,status} and
// satchel_provider_fetch_bytes_out_total.
func WithFetchMetrics(reg prometheus.Registerer) FetchOption {
	return func(c *fetchConfig) { c.reg = reg }
}

// WithFetchLogger sets the handler's logger (records carry
// component=fetch); the default is slog.Default(). It logs at Debug.
func WithFetchLogger(l *slog.Logger) FetchOption {
	return func(c *fetchConfig) { c.log = l }
}

// NewFetchHandler returns a handler serving the blocks of bs that policy
// allows. Register it on a host.
func NewFetchHandler(bs *blockstore.Store, policy FetchPolicy, opts ...FetchOption) *FetchHandler {
	var cfg fetchConfig
	for _, o := range opts {
		o(&cfg)
	}
	return &FetchHandler{
		bs:           bs,
		policy:       policy,
		cfg:          cfg,
		metrics:      newFetchMetrics(cfg.reg),
		streamServer: newStreamServer(p2p.FetchProtocol, "fetch", cfg.log),
	}
}

// Register serves the fetch protocol on h.
func (h *FetchHandler) Register(hst host.Host) {
	h.register(hst, h.serveStream)
}

// Close stops serving: it removes the handler from its hosts, resets the
// streams being served and waits for their goroutines. Close is idempotent.
func (h *FetchHandler) Close() error {
	h.close()
	return nil
}

// fetchJob is one request being answered; replies go out in request order.
type fetchJob struct {
	done  chan struct{}
	reply *wire.FetchReply
}

// serveStream answers the requests of one stream. Replies are prepared
// concurrently, up to MaxFetchInFlight ahead, and written in order.
func (h *FetchHandler) serveStream(s network.Stream, _ *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queue := make(chan *fetchJob, MaxFetchInFlight)
	writerErr := make(chan error, 1)
	go func() { writerErr <- writeFetchReplies(s, queue, cancel) }()

	var workers sync.WaitGroup
	err := h.readRequests(ctx, s, queue, &workers)
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

// readRequests reads requests until the reader closes its side or the
// stream idles, queueing a job for each and preparing its reply on a
// goroutine counted by workers.
func (h *FetchHandler) readRequests(ctx context.Context, s network.Stream, queue chan<- *fetchJob, workers *sync.WaitGroup) error {
	br := bufio.NewReaderSize(s, 16<<10)
	for {
		_ = s.SetReadDeadline(idleDeadline())
		req, err := readFetchRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) || isTimeout(err) {
				return nil // closed, or idle: end cleanly
			}
			return err
		}
		job := &fetchJob{done: make(chan struct{})}
		select {
		case queue <- job:
		case <-ctx.Done():
			return ctx.Err()
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer close(job.done)
			job.reply = h.answer(ctx, req)
			job.reply.Id = req.Id
		}()
	}
}

// writeFetchReplies writes the jobs' replies in queue order as each is
// ready. After a write error it cancels the stream's work, resets the
// stream and drains the queue; it returns that error.
func writeFetchReplies(s network.Stream, queue <-chan *fetchJob, cancel context.CancelFunc) error {
	var err error
	for job := range queue {
		<-job.done
		if err != nil {
			continue // drain
		}
		_ = s.SetWriteDeadline(idleDeadline())
		if err = writeFetchReply(s, job.reply); err != nil {
			cancel()
			_ = s.Reset()
		}
	}
	return err
}

// readFetchRequest reads one FetchRequest frame, checking its announced
// length against MaxFrame before allocating.
func readFetchRequest(br *bufio.Reader) (*wire.FetchRequest, error) {
	body, err := readFrameBody(br)
	if err != nil {
		return nil, err
	}
	var req wire.FetchRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("undecodable fetch request: %w", err)
	}
	return &req, nil
}

// answer prepares the reply to one request.
func (h *FetchHandler) answer(ctx context.Context, req *wire.FetchRequest) *wire.FetchReply {
	switch body := req.Body.(type) {
	case *wire.FetchRequest_Have:
		r := h.have(ctx, body.Have)
		h.metrics.request("have", r.Status)
		return r
	case *wire.FetchRequest_Get:
		r := h.get(ctx, body.Get)
		h.metrics.request("get", r.Status)
		if r.Status == wire.FetchStatus_FETCH_STATUS_OK {
			h.metrics.bytesOut.Add(float64(len(r.Data)))
		}
		return r
	default:
		h.metrics.request("unknown", wire.FetchStatus_FETCH_STATUS_REFUSED)
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_REFUSED, Reason: "request has no body"}
	}
}

func (h *FetchHandler) have(ctx context.Context, req *wire.HaveRequest) *wire.FetchReply {
	if len(req.Cids) > MaxHaveCIDs {
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_REFUSED,
			Reason: fmt.Sprintf("%d CIDs exceed the %d-CID limit of one HAVE", len(req.Cids), MaxHaveCIDs)}
	}
	flags := make([]bool, len(req.Cids))
	for i, b := range req.Cids {
		c, err := cid.Cast(b)
		if err != nil {
			continue
		}
		held, err := h.bs.Has(c)
		flags[i] = err == nil && held && h.policy.Serves(ctx, c)
	}
	return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_OK, Have: flags}
}

func (h *FetchHandler) get(ctx context.Context, req *wire.GetRequest) *wire.FetchReply {
	c, err := cid.Cast(req.Cid)
	if err != nil {
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_REFUSED, Reason: fmt.Sprintf("invalid CID: %v", err)}
	}
	if !h.policy.Serves(ctx, c) {
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_NOT_FOUND, Reason: fmt.Sprintf("%s is not in a bag this node stores", c)}
	}
	data, err := h.bs.Get(c)
	switch {
	case errors.Is(err, blockstore.ErrNotFound):
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_NOT_FOUND, Reason: fmt.Sprintf("%s is not held", c)}
	case errors.Is(err, blockstore.ErrCorrupt):
		h.log.Warn("corrupt block found while serving", "cid", c)
		if h.cfg.onCorrupt != nil {
			h.cfg.onCorrupt(c)
		}
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_FAILED, Reason: fmt.Sprintf("%s is corrupt here and being repaired; read it from another provider", c)}
	case err != nil:
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_FAILED, Reason: fmt.Sprintf("%s cannot be read: %v", c, err)}
	}
	size := uint64(len(data))
	if req.Offset > size {
		return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_REFUSED, Size: size,
			Reason: fmt.Sprintf("offset %d is past the end of the %d-byte block", req.Offset, size)}
	}
	n := size - req.Offset
	if req.Length != 0 {
		n = min(n, req.Length)
	}
	n = min(n, MaxGetBytes)
	return &wire.FetchReply{Status: wire.FetchStatus_FETCH_STATUS_OK, Data: data[req.Offset : req.Offset+n], Size: size}
}

// writeFetchReply writes a reply; one carrying data is encoded by hand so the
// block's bytes go out without a copy into a marshalled message.
func writeFetchReply(w io.Writer, r *wire.FetchReply) error {
	if len(r.Data) < 64<<10 {
		return p2p.WriteMsg(w, r)
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
	frame := protowire.AppendVarint(make([]byte, 0, len(hdr)+10), uint64(len(hdr)+len(r.Data)))
	frame = append(frame, hdr...)
	if _, err := w.Write(frame); err != nil {
		return err
	}
	_, err := w.Write(r.Data)
	return err
}

// fetchMetrics are the fetch handler's Prometheus collectors.
type fetchMetrics struct {
	requests *prometheus.CounterVec
	bytesOut prometheus.Counter
}

func newFetchMetrics(reg prometheus.Registerer) *fetchMetrics {
	m := &fetchMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "requests_total",
			Help: "Fetch requests by kind (have, get) and status (ok, not_found, refused, failed).",
		}, []string{"kind", "status"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "bytes_out_total",
			Help: "Block bytes sent in GET replies.",
		}),
	}
	if reg != nil {
		m.requests = registerCollector(reg, m.requests)
		m.bytesOut = registerCollector(reg, m.bytesOut)
	}
	return m
}

func (m *fetchMetrics) request(kind string, st wire.FetchStatus) {
	var status string
	switch st {
	case wire.FetchStatus_FETCH_STATUS_OK:
		status = "ok"
	case wire.FetchStatus_FETCH_STATUS_NOT_FOUND:
		status = "not_found"
	case wire.FetchStatus_FETCH_STATUS_REFUSED:
		status = "refused"
	default:
		status = "failed"
	}
	m.requests.WithLabelValues(kind, status).Inc()
}
