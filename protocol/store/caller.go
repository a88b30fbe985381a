package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Stream is the uploader's side of one /satchel/store/1.0.0 stream:
// many goroutines Push chunks over it at once, pipelined, and Bind an upload
// to its object at the end. The stream keeps at most MaxChunksInFlight
// exchanges open (further Pushes wait for a slot) and writes every chunk's
// segments, data and SIGN back to back once the provider agreed, so one
// stream moves data at close to the libp2p stream's speed.
//
// A Stream is safe for concurrent use. A stream that failed (reset,
// idle for IdleTimeout with work pending, or closed) fails every call
// with an error wrapping ErrStreamClosed.
type Stream struct {
	s    network.Stream
	peer peer.ID
	cfg  streamConfig
	key  crypto.PrivKey // the host's, for hop tokens; nil if the peerstore has none

	wmu sync.Mutex // serialises writes; guards fw
	fw  *p2p.FrameWriter
	// sending counts the sends writing or waiting to: only the last one
	// out flushes, so a request queued behind a chunk's data leaves with
	// its SIGN frame in one write.
	sending atomic.Int32

	mu      sync.Mutex // guards the fields below
	pending map[uint64]*pushExchange
	nextID  uint64
	err     error // why the stream failed, once it has
	closing bool

	window     chan struct{} // a token per open exchange
	failed     chan struct{} // closed when the stream fails
	readerDone chan struct{}
	aborts     sync.WaitGroup // goroutines sending SIGN for abandoned exchanges
}

// pushExchange is one exchange (a chunk or a bind) in flight on a stream.
type pushExchange struct {
	id      uint64
	replies chan *pb.StoreReply // never blocks: at most maxReplies per exchange
	// sentChunk is set once the segments, data and SIGN went out.
	sentChunk bool
	// abandoned is set when the caller stopped waiting; the reader then
	// finishes the exchange on its own.
	abandoned bool
	// replied counts the provider's replies: an exchange has at most
	// maxReplies (AGREED, SEGMENTS_OK, DATA_RECEIVED, then its last).
	replied int
}

// maxReplies is the most replies one exchange gets from an honest provider.
const maxReplies = 4

// StreamOption configures Open.
type StreamOption func(*streamConfig)

type streamConfig struct {
	segmentSize int
	window      int
}

// WithSegmentSize sets the segment size of the segment maps the uploader
// sends (default DefaultSegmentSize, clamped to MinSegmentSize and
// MaxSegmentSize). A chunk no larger than it is sent as one segment, whose
// hash is the chunk's own digest.
func WithSegmentSize(n int) StreamOption {
	return func(c *streamConfig) { c.segmentSize = min(max(n, MinSegmentSize), MaxSegmentSize) }
}

// WithWindow sets how many chunk exchanges the stream keeps open at once
// (default and maximum MaxChunksInFlight).
func WithWindow(n int) StreamOption {
	return func(c *streamConfig) { c.window = min(max(n, 1), MaxChunksInFlight) }
}

// Open opens a store stream to provider p on h. ctx bounds opening the
// stream only; each Push and Bind takes its own.
func Open(ctx context.Context, h host.Host, p peer.ID, opts ...StreamOption) (*Stream, error) {
	cfg := streamConfig{segmentSize: DefaultSegmentSize, window: MaxChunksInFlight}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := h.NewStream(ctx, p, p2p.StoreProtocol)
	if err != nil {
		return nil, fmt.Errorf("store: open store stream to %s: %w", p, err)
	}
	ss := &Stream{
		s:          s,
		peer:       p,
		key:        h.Peerstore().PrivKey(h.ID()),
		cfg:        cfg,
		fw:         p2p.NewFrameWriter(s),
		pending:    make(map[uint64]*pushExchange),
		window:     make(chan struct{}, cfg.window),
		failed:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go ss.readLoop()
	return ss, nil
}

// Peer returns the provider the stream goes to.
func (s *Stream) Peer() peer.ID { return s.peer }

// ChunkPush is one chunk an uploader pushes.
type ChunkPush struct {
	// Bag is the bag of the object, e.g. "dynamic:channel:1".
	Bag string
	// Object is the registered data object, or 0 for a streamed upload not
	// registered yet (Session must then be set).
	Object uint64
	// Index is the chunk's position among the object's leaves.
	Index int
	// CID is the chunk's content ID; Data must hash to it.
	CID cid.Cid
	// Data is the chunk's bytes. Push does not keep it after returning.
	Data []byte
	// Proof ties the chunk to the object's content ID (from
	// chunker.Result.Proof); empty for a one-chunk object and for streamed
	// uploads.
	Proof chunker.Proof
	// Session is the 16-byte session of a streamed upload.
	Session []byte
	// Expiry is when the uploader stops needing the agreement; the zero
	// time lets the provider choose (DefaultSessionTTL).
	Expiry time.Time
	// Forward, for PushPipeline, is the rest of the replication pipeline:
	// the providers the chunk is passed along to after this stream's
	// provider, in order (at most MaxForwardHops).
	Forward []Hop
	// OnStep, when set, is called with each step of the exchange as it
	// happens, in order (see PushStep). It runs on the goroutine calling
	// Push, between its writes and waits, never while the stream is
	// locked and never after Push returned; the provider's slot stays
	// open meanwhile, so OnStep must return quickly.
	OnStep func(PushStep)

	// nonce is the request's nonce, which every receipt answering the push
	// must echo: drawn by push, or the request's when a hop forwards it.
	nonce []byte
	// relayed is set when a hop forwards the push: hopToken is then the
	// uploader's token for this hop (Hop.Token), sent as the request's.
	relayed  bool
	hopToken []byte
}

// Push stores one chunk with the provider and returns the provider's receipt,
// verified (VerifyReceipt, and naming this chunk, object and bag, and this
// push's session and fresh nonce, so no earlier receipt passes). A chunk
// the provider already held yields a receipt too. A refusal or failure
// returns a *RefusedError. Push is safe for concurrent use: run many at once
// to keep the stream full. ChunkPush.OnStep follows the exchange step by
// step. A chunk with a forward list goes through PushPipeline.
//
// When ctx ends while the provider still answers, Push returns ctx's error
// and the stream finishes the exchange in the background.
func (s *Stream) Push(ctx context.Context, c ChunkPush) (*pb.Receipt, error) {
	if len(c.Forward) > 0 {
		return nil, errors.New("store: push: a chunk with a forward list is pushed with PushPipeline")
	}
	r, err := s.push(ctx, &c)
	if err != nil {
		return nil, err
	}
	return r.Receipt, nil
}

// push runs one chunk exchange and returns its SIGNED reply, whose own
// receipt is verified.
func (s *Stream) push(ctx context.Context, c *ChunkPush) (*pb.StoreReply, error) {
	req, err := newChunkRequest(c)
	if err != nil {
		return nil, err
	}
	hashes, segSize, err := segmentHashes(c.CID, c.Data, s.cfg.segmentSize)
	if err != nil {
		return nil, fmt.Errorf("store: push: %w", err)
	}
	ex, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.send(func() error {
		return s.fw.WriteMsg(&pb.StoreRequest{Id: ex.id, Body: &pb.StoreRequest_Request{Request: req}})
	}); err != nil {
		return nil, err
	}
	c.step(PushRequested)
	if err := s.deliver(ctx, ex, c, segSize, hashes); err != nil {
		return nil, err
	}
	r, err := s.await(ctx, ex)
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case pb.Status_STATUS_SIGNED:
	case pb.Status_STATUS_FAILED:
		return nil, refusal(r)
	default:
		return nil, s.violation(ex, r, "SIGNED")
	}
	if err := s.checkReceipt(r.Receipt, c); err != nil {
		return nil, err
	}
	c.step(PushSigned)
	return r, nil
}

// newChunkRequest checks a push and returns its STORE_CHUNK_REQUEST.
func newChunkRequest(c *ChunkPush) (*pb.StoreChunkRequest, error) {
	if len(c.Data) > MaxChunkLength {
		return nil, fmt.Errorf("store: push: chunk of %d bytes exceeds the %d-byte limit", len(c.Data), MaxChunkLength)
	}
	if !c.CID.Defined() {
		return nil, errors.New("store: push: chunk CID undefined")
	}
	if c.Object == 0 && len(c.Session) != SessionIDLength {
		return nil, fmt.Errorf("store: push: a chunk of an unregistered object needs a %d-byte session", SessionIDLength)
	}
	if c.Index < 0 {
		return nil, fmt.Errorf("store: push: negative chunk index %d", c.Index)
	}
	forward, err := encodeForward(c.Forward)
	if err != nil {
		return nil, err
	}
	if c.nonce == nil {
		if c.nonce, err = newNonce(); err != nil {
			return nil, err
		}
	}
	req := &pb.StoreChunkRequest{
		BagId:    c.Bag,
		ObjectId: c.Object,
		Cid:      c.CID.Bytes(),
		Length:   uint64(len(c.Data)),
		Index:    uint64(c.Index),
		Proof:    c.Proof.Blocks,
		Session:  c.Session,
		Forward:  forward,
		Nonce:    c.nonce,
		HopToken: c.hopToken,
	}
	if !c.Expiry.IsZero() {
		req.ExpiryUnix = c.Expiry.Unix()
	}
	return req, nil
}

// step reports st to OnStep, if set.
func (c *ChunkPush) step(st PushStep) {
	if c.OnStep != nil {
		c.OnStep(st)
	}
}

// deliver carries a chunk's exchange from the provider's answer to the
// request up to SIGNED: for a chunk the provider holds it sends SIGN alone;
// once the provider agreed it sends the segments, data and SIGN and reads
// the answers to them.
func (s *Stream) deliver(ctx context.Context, ex *pushExchange, c *ChunkPush, segSize int, hashes [][]byte) error {
	r, err := s.await(ctx, ex)
	if err != nil {
		return err
	}
	switch r.Status {
	case pb.Status_STATUS_REFUSED, pb.Status_STATUS_FAILED:
		return refusal(r)
	case pb.Status_STATUS_ALREADY_STORED:
		c.step(PushAlreadyStored)
		if err := s.send(func() error { return writeSign(s.fw, ex.id) }); err != nil {
			return err
		}
		s.markSent(ex)
		c.step(PushSignSent)
		return nil
	case pb.Status_STATUS_AGREED:
		c.step(PushAgreed)
		if err := s.send(func() error {
			return writeChunk(s.fw, ex.id, segSize, hashes, c.Data)
		}); err != nil {
			return err
		}
		s.markSent(ex)
		c.step(PushSegmentsSent)
		c.step(PushDataSent)
		c.step(PushSignSent)
		return s.awaitStored(ctx, ex, c)
	default:
		return s.violation(ex, r, "AGREED")
	}
}

// awaitStored reads the provider's answers to a chunk's segments and data:
// SEGMENTS_OK then DATA_RECEIVED, or ALREADY_STORED when the chunk reached
// it meanwhile by another upload.
func (s *Stream) awaitStored(ctx context.Context, ex *pushExchange, c *ChunkPush) error {
	r, err := s.await(ctx, ex)
	if err != nil {
		return err
	}
	switch r.Status {
	case pb.Status_STATUS_SEGMENTS_OK:
		c.step(PushSegmentsAccepted)
		if r, err = s.await(ctx, ex); err != nil {
			return err
		}
		if r.Status != pb.Status_STATUS_DATA_RECEIVED && r.Status != pb.Status_STATUS_FAILED {
			return s.violation(ex, r, "DATA_RECEIVED")
		}
		if r.Status == pb.Status_STATUS_FAILED {
			return refusal(r)
		}
		c.step(PushDataReceived)
	case pb.Status_STATUS_ALREADY_STORED:
		c.step(PushAlreadyStored)
	case pb.Status_STATUS_FAILED:
		return refusal(r)
	default:
		return s.violation(ex, r, "SEGMENTS_OK")
	}
	return nil
}

// checkReceipt verifies the provider's signature on rc and that it answers
// push c: the chunk, object and bag pushed, the push's session (for an
// unregistered object's chunk) and its nonce.
func (s *Stream) checkReceipt(rc *pb.Receipt, c *ChunkPush) error {
	if err := VerifyReceipt(rc, s.peer); err != nil {
		return err
	}
	return checkReceiptFor(rc, c, c.Session, "receipt of "+s.peer.String())
}

// BindRequest ties an upload to the data object registered on chain: the
// provider rebuilds the object's root from Chunks, checks it against the
// chain and that it holds every chunk, and records the object.
type BindRequest struct {
	// Session is the streamed upload's session, or nil when the chunks were
	// pushed with the object ID.
	Session []byte
	Bag     string
	Object  uint64
	// Chunks lists every chunk of the object in order (chunker.Result.Chunks).
	Chunks []chunker.ChunkInfo
}

// Bind sends BIND and waits for BOUND. A refusal or failure (the root does
// not match the chain, a chunk is missing) returns a *RefusedError.
func (s *Stream) Bind(ctx context.Context, b BindRequest) error {
	if b.Object == 0 {
		return errors.New("store: bind: object ID 0")
	}
	if len(b.Chunks) > MaxBindChunks {
		return fmt.Errorf("store: bind: %d chunks exceed the %d-chunk limit of one bind", len(b.Chunks), MaxBindChunks)
	}
	req := &pb.BindRequest{Session: b.Session, ObjectId: b.Object, BagId: b.Bag, Chunks: make([]*pb.ChunkRef, len(b.Chunks))}
	for i, c := range b.Chunks {
		req.Chunks[i] = &pb.ChunkRef{Cid: c.CID.Bytes(), Size: uint64(c.Size)}
	}
	return s.exchange(ctx, &pb.StoreRequest{Body: &pb.StoreRequest_Bind{Bind: req}}, pb.Status_STATUS_BOUND)
}

// Drop sends DROP for a streamed upload's session of bag and waits for
// DROPPED: the provider deletes the session's chunks that nothing else
// holds. A refusal returns a *RefusedError.
func (s *Stream) Drop(ctx context.Context, session []byte, bag string) error {
	if len(session) != SessionIDLength {
		return fmt.Errorf("store: drop: session must be %d bytes", SessionIDLength)
	}
	return s.exchange(ctx, &pb.StoreRequest{Body: &pb.StoreRequest_Drop{Drop: &pb.DropRequest{Session: session, BagId: bag}}}, pb.Status_STATUS_DROPPED)
}

// exchange sends a one-frame request (BIND, DROP) as an exchange of its own
// (req's id is set here) and waits for its one reply: nil for want, a
// *RefusedError for REFUSED or FAILED, a protocol violation for anything
// else.
func (s *Stream) exchange(ctx context.Context, req *pb.StoreRequest, want pb.Status) error {
	ex, err := s.begin(ctx)
	if err != nil {
		return err
	}
	s.markSent(ex)
	if err := s.send(func() error {
		req.Id = ex.id
		return s.fw.WriteMsg(req)
	}); err != nil {
		return err
	}
	r, err := s.await(ctx, ex)
	if err != nil {
		return err
	}
	switch r.Status {
	case want:
		return nil
	case pb.Status_STATUS_REFUSED, pb.Status_STATUS_FAILED:
		return refusal(r)
	default:
		return s.violation(ex, r, strings.TrimPrefix(want.String(), "STATUS_"))
	}
}

// Close ends the stream: it tells the provider no more requests come, waits
// (up to IdleTimeout) for exchanges still open to end, and closes it.
// Calls still waiting fail with ErrStreamClosed. Close is idempotent.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.readerDone
		return nil
	}
	s.closing = true
	s.mu.Unlock()

	s.wmu.Lock()
	err := s.fw.Flush()
	if err == nil {
		err = s.s.CloseWrite()
	}
	s.wmu.Unlock()
	if err != nil {
		_ = s.s.Reset()
	} else {
		// The provider closes its side once it answered everything.
		_ = s.s.SetReadDeadline(time.Now().Add(IdleTimeout))
	}
	<-s.readerDone
	s.aborts.Wait()
	_ = s.s.Close()
	return nil
}

// begin takes a window slot and registers a new exchange.
func (s *Stream) begin(ctx context.Context) (*pushExchange, error) {
	select {
	case s.window <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.failed:
		return nil, s.failure()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closing {
		<-s.window
		if s.err != nil {
			return nil, s.err
		}
		return nil, fmt.Errorf("%w: closing", ErrStreamClosed)
	}
	s.nextID++
	ex := &pushExchange{id: s.nextID, replies: make(chan *pb.StoreReply, maxReplies)}
	if len(s.pending) == 0 {
		_ = s.s.SetReadDeadline(time.Now().Add(IdleTimeout))
	}
	s.pending[ex.id] = ex
	return ex, nil
}

// send runs fn, which writes frames into s.fw, under the write lock and
// flushes. A write error fails the stream.
//
// A send that finds another waiting for the lock leaves its frames in the
// buffer for that one to flush: the waiter writes and flushes at once, and
// should it fail, the stream fails and with it every exchange whose frames
// were still buffered.
func (s *Stream) send(fn func() error) error {
	s.sending.Add(1)
	s.wmu.Lock()
	_ = s.s.SetWriteDeadline(time.Now().Add(IdleTimeout))
	err := fn()
	if s.sending.Add(-1) == 0 && err == nil {
		err = s.fw.Flush()
	}
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("%w: write to %s: %w", ErrStreamClosed, s.peer, err))
		return s.failure()
	}
	return nil
}

func (s *Stream) markSent(ex *pushExchange) {
	s.mu.Lock()
	ex.sentChunk = true
	s.mu.Unlock()
}

// await returns the exchange's next reply. If ctx ends first, the exchange
// is abandoned to the reader.
func (s *Stream) await(ctx context.Context, ex *pushExchange) (*pb.StoreReply, error) {
	select {
	case r, ok := <-ex.replies:
		if ok {
			return r, nil
		}
		return nil, s.failure()
	case <-s.failed:
		// A reply may have arrived just before the failure.
		select {
		case r, ok := <-ex.replies:
			if ok {
				return r, nil
			}
		default:
		}
		return nil, s.failure()
	case <-ctx.Done():
		s.abandon(ex)
		return nil, ctx.Err()
	}
}

// abandon hands an exchange whose caller stopped waiting to the reader.
func (s *Stream) abandon(ex *pushExchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, open := s.pending[ex.id]; !open {
		return // already ended
	}
	ex.abandoned = true
	// Replies that came in before: finish with them as the reader would.
	for {
		select {
		case r := <-ex.replies:
			if r != nil {
				s.finishAbandonedLocked(ex, r)
			}
		default:
			return
		}
	}
}

// finishAbandonedLocked handles a reply for an abandoned exchange: one agreed
// to but never sent is ended by a SIGN (the provider answers FAILED, or
// SIGNED for a chunk it held), so the provider frees its slot. Call with s.mu.
func (s *Stream) finishAbandonedLocked(ex *pushExchange, r *pb.StoreReply) {
	if ex.sentChunk {
		return
	}
	switch r.Status {
	case pb.Status_STATUS_AGREED, pb.Status_STATUS_ALREADY_STORED:
		ex.sentChunk = true
		s.aborts.Add(1)
		go func() {
			defer s.aborts.Done()
			_ = s.send(func() error { return writeSign(s.fw, ex.id) })
		}()
	}
}

// violation fails the stream after an answer out of order.
func (s *Stream) violation(ex *pushExchange, r *pb.StoreReply, want string) error {
	err := fmt.Errorf("%w: %s answered %v to exchange %d, expected %s", ErrProtocol, s.peer, r.Status, ex.id, want)
	s.fail(err)
	_ = s.s.Reset()
	return err
}

// fail marks the stream failed (once) and wakes every waiter.
func (s *Stream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.failed)
}

func (s *Stream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ErrStreamClosed
	}
	return s.err
}

// readLoop dispatches the provider's replies to their exchanges.
func (s *Stream) readLoop() {
	defer close(s.readerDone)
	fr := p2p.NewFrameReader(s.s, MaxReplyFrame).LimitElements(replyLimits)
	for {
		var r pb.StoreReply
		if err := fr.ReadMsg(&r); err != nil {
			if !errors.Is(err, io.EOF) {
				_ = s.s.Reset()
			}
			s.fail(p2p.ReadFailure(s.peer, err))
			return
		}
		s.dispatch(&r)
	}
}

func (s *Stream) dispatch(r *pb.StoreReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.pending[r.Id]
	if !ok {
		return // an exchange that already ended
	}
	if ex.replied++; ex.replied > maxReplies {
		// Replies past the protocol's would keep renewing the read
		// deadline (and hold Close) for as long as the provider talks.
		s.mu.Unlock()
		s.fail(fmt.Errorf("%w: %s sent more than %d replies to exchange %d", ErrProtocol, s.peer, maxReplies, r.Id))
		_ = s.s.Reset()
		s.mu.Lock()
		return
	}
	switch r.Status {
	case pb.Status_STATUS_REFUSED, pb.Status_STATUS_FAILED, pb.Status_STATUS_SIGNED, pb.Status_STATUS_BOUND, pb.Status_STATUS_DROPPED:
		delete(s.pending, r.Id)
		<-s.window
		// Nothing pending: no deadline, unless Close is waiting for the
		// provider to close its side under the idle deadline it set.
		if len(s.pending) == 0 && !s.closing {
			_ = s.s.SetReadDeadline(time.Time{})
		}
	default:
		if !s.closing { // Close's deadline stands: the provider must finish by it
			_ = s.s.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
	}
	if ex.abandoned {
		s.finishAbandonedLocked(ex, r)
		return
	}
	ex.replies <- r // never blocks: at most maxReplies, the channel's room
}

// segmentHashes returns the segment size and the sha2-256 of every segment
// of data. A chunk that is one segment has its own digest as the hash, taken
// from its CID.
func segmentHashes(c cid.Cid, data []byte, segSize int) ([][]byte, int, error) {
	if len(data) <= segSize {
		dec, err := multihash.Decode(c.Hash())
		if err != nil || dec.Code != multihash.SHA2_256 || len(dec.Digest) != sha256.Size {
			return nil, 0, fmt.Errorf("chunk CID %s is not a sha2-256 CID", c)
		}
		return [][]byte{dec.Digest}, segSize, nil
	}
	n := (len(data) + segSize - 1) / segSize
	hashes := make([][]byte, n)
	for i := range n {
		sum := sha256.Sum256(data[i*segSize : min((i+1)*segSize, len(data))])
		hashes[i] = sum[:]
	}
	return hashes, segSize, nil
}
