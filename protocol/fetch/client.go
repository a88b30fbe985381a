package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Client reads blocks from providers over /satchel/fetch/1.0.0. It
// keeps one stream per provider, reused across calls, with up to
// MaxInFlight requests pipelined on it; calls beyond that wait. It is
// safe for concurrent use; Close releases the streams.
type Client struct {
	h host.Host

	mu      sync.Mutex
	closed  bool
	conns   map[peer.ID]*fetchConn
	opening map[peer.ID]chan struct{} // closed when the stream being opened is ready or failed
	wg      sync.WaitGroup            // reader goroutines
	drain   time.Duration             // see WithCloseDrain
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithCloseDrain sets how long Close reads the replies still due on a
// stream before it resets it (default CloseDrain); 0 or less resets at
// once.
func WithCloseDrain(d time.Duration) ClientOption {
	return func(f *Client) { f.drain = d }
}

// NewClient returns a Client opening streams from h.
func NewClient(h host.Host, opts ...ClientOption) *Client {
	f := &Client{h: h, conns: make(map[peer.ID]*fetchConn), opening: make(map[peer.ID]chan struct{}), drain: CloseDrain}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Have asks p which of cids it holds and serves, one flag per CID in order.
// Lists longer than MaxHaveCIDs are asked in several requests.
func (f *Client) Have(ctx context.Context, p peer.ID, cids []cid.Cid) (_ []bool, err error) {
	out := make([]bool, 0, len(cids))
	for start, end := 0, 0; start < len(cids) || start == 0; start = end {
		req := &pb.HaveRequest{}
		if end, err = haveBatch(req, cids, start); err != nil {
			return nil, err
		}
		batch := cids[start:end]
		r, err := f.call(ctx, p, &pb.FetchRequest{Body: &pb.FetchRequest_Have{Have: req}})
		if err != nil {
			return nil, err
		}
		r.release() // Have keeps nothing of the frame
		if err := fetchStatusErr(r.FetchReply, "have"); err != nil {
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

// haveBatch fills req with the CIDs of cids from start on that fit one
// HAVE (at most MaxHaveCIDs, in a frame of at most MaxRequestFrame) and
// returns where the next batch starts.
func haveBatch(req *pb.HaveRequest, cids []cid.Cid, start int) (end int, err error) {
	size := 16 // id and the have field's tag and length
	for end = start; end < len(cids) && end-start < MaxHaveCIDs; end++ {
		b := cids[end].Bytes()
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(b))
		if size+n > MaxRequestFrame {
			if end == start {
				return 0, fmt.Errorf("fetch: have: CID %s of %d bytes does not fit a %d-byte request", cids[end], len(b), MaxRequestFrame)
			}
			break
		}
		size += n
		req.Cids = append(req.Cids, b)
	}
	return end, nil
}

// Block is a verified block read with ReadBlock. Data lies in a pooled
// frame buffer: Release hands it back once nothing refers to Data any more,
// so the next block read reuses memory already mapped instead of faulting
// in fresh pages. Not releasing is safe (the collector takes it); using Data
// after Release is not.
type Block struct {
	Data  []byte
	frame []byte
	// verified is set by the Client that read the block, once Data
	// matched its CID (see Verified).
	verified bool
}

// Verified reports whether b's bytes were verified against their CID by
// the Client that read them (ReadBlock). A Block built elsewhere
// (Block{Data: b}) reports false, so a caller that must serve only
// verified bytes hashes it; a verified Block's Data must not be changed
// in place.
func (b Block) Verified() bool { return b.verified }

// Release hands the block's buffer back for reuse. Data (and every copy of
// the Block) must not be used afterwards; a zero Block's Release does
// nothing.
func (b *Block) Release() {
	recycleFrame(b.frame)
	b.Data, b.frame, b.verified = nil, nil, false
}

// GetBlock reads the whole block c from p and verifies it against c: bytes
// that do not match give an error wrapping ErrCIDMismatch (a lying or
// corrupt provider; try another).
func (f *Client) GetBlock(ctx context.Context, p peer.ID, c cid.Cid) ([]byte, error) {
	b, err := f.ReadBlock(ctx, p, c)
	return b.Data, err
}

// ReadBlock is GetBlock returning the block in a buffer the caller hands
// back with Block.Release once done with it.
func (f *Client) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (Block, error) {
	data, size, frame, err := f.getRange(ctx, p, c, 0, 0)
	if err != nil {
		return Block{}, err
	}
	b := Block{Data: data, frame: frame}
	// The announced size is the peer's word: bound it before collecting
	// replies, so a lying peer cannot make us buffer without end.
	if size > MaxBlockSize {
		b.Release()
		return Block{}, fmt.Errorf("%w: %s announced %d bytes for %s, over the %d-byte block limit", ErrBlockTooLarge, p, size, c, MaxBlockSize)
	}
	if uint64(len(data)) < size { // a block larger than one reply
		if b, err = f.readRest(ctx, p, c, b, size); err != nil {
			return Block{}, err
		}
	}
	if uint64(len(b.Data)) != size {
		n := len(b.Data)
		b.Release()
		return Block{}, fmt.Errorf("%w: %s sent %d bytes of %s, announced %d", ErrCIDMismatch, p, n, c, size)
	}
	if err := chunker.VerifyChunk(c, b.Data); err != nil {
		b.Release()
		return Block{}, fmt.Errorf("fetch: block from %s: %w", p, err)
	}
	b.verified = true
	return b, nil
}

// readRest reads the rest of a block of size bytes whose first reply is
// first, into one buffer of its own (first's frame is released).
func (f *Client) readRest(ctx context.Context, p peer.ID, c cid.Cid, first Block, size uint64) (Block, error) {
	data := append(make([]byte, 0, size), first.Data...)
	first.Release()
	for uint64(len(data)) < size {
		more, again, frame, err := f.getRange(ctx, p, c, uint64(len(data)), 0)
		if err != nil {
			return Block{}, err
		}
		switch {
		case again != size:
			err = fmt.Errorf("%w: %s announced %d bytes for %s, then %d", ErrProtocol, p, size, c, again)
		case len(more) == 0:
			err = fmt.Errorf("%w: %s sent no bytes at offset %d of %s", ErrProtocol, p, len(data), c)
		}
		if err == nil {
			data = append(data, more...)
		}
		recycleFrame(frame)
		if err != nil {
			return Block{}, err
		}
	}
	return Block{Data: data}, nil
}

// GetRange reads up to n bytes of block c from p starting at off (n = 0:
// to the end), at most MaxGetBytes, and returns them with the block's whole
// size. A range cannot be verified against the CID; read whole blocks
// (GetBlock) to verify.
func (f *Client) GetRange(ctx context.Context, p peer.ID, c cid.Cid, off, n uint64) (data []byte, size uint64, err error) {
	data, size, _, err = f.getRange(ctx, p, c, off, n)
	return data, size, err
}

// getRange is GetRange that also returns the pooled frame data lies in.
func (f *Client) getRange(ctx context.Context, p peer.ID, c cid.Cid, off, n uint64) (data []byte, size uint64, frame []byte, err error) {
	if n > MaxGetBytes {
		return nil, 0, nil, fmt.Errorf("fetch: get: %d bytes exceed the %d-byte limit of one request", n, MaxGetBytes)
	}
	if len(c.Bytes()) > MaxRequestFrame-64 {
		return nil, 0, nil, fmt.Errorf("fetch: get: CID %s of %d bytes does not fit a %d-byte request", c, len(c.Bytes()), MaxRequestFrame)
	}
	r, err := f.call(ctx, p, &pb.FetchRequest{Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes(), Offset: off, Length: n}}})
	if err != nil {
		return nil, 0, nil, err
	}
	if err := fetchStatusErr(r.FetchReply, "get "+c.String()); err != nil {
		r.release()
		return nil, 0, nil, err
	}
	want := r.Size - min(off, r.Size)
	if n != 0 {
		want = min(want, n)
	}
	want = min(want, MaxGetBytes)
	if got := uint64(len(r.Data)); got != want {
		r.release() // empties r.Data: got was counted before
		return nil, 0, nil, fmt.Errorf("%w: %s sent %d bytes of %s at %d, expected %d of %d", ErrProtocol, p, got, c, off, want, r.Size)
	}
	return r.Data, r.Size, r.frame, nil
}

func fetchStatusErr(r *pb.FetchReply, what string) error {
	switch r.Status {
	case pb.FetchStatus_FETCH_STATUS_OK:
		return nil
	case pb.FetchStatus_FETCH_STATUS_NOT_FOUND:
		return fmt.Errorf("%w: %s: %s", ErrNotServed, what, r.Reason)
	case pb.FetchStatus_FETCH_STATUS_FAILED:
		return fmt.Errorf("%w: %s: %s", ErrBlockFailed, what, r.Reason)
	case pb.FetchStatus_FETCH_STATUS_REFUSED:
		if r.Busy {
			return fmt.Errorf("%w: %s: %s", ErrProviderBusy, what, r.Reason)
		}
		return fmt.Errorf("%w: %s: %s", ErrRefused, what, r.Reason)
	default:
		return fmt.Errorf("%w: %s: status %v", ErrProtocol, what, r.Status)
	}
}

// call sends one request and returns its reply, retrying once on a fresh
// stream when a reused stream turned out dead before answering (the
// provider closes idle streams).
func (f *Client) call(ctx context.Context, p peer.ID, req *pb.FetchRequest) (*reply, error) {
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
func (f *Client) conn(ctx context.Context, p peer.ID) (c *fetchConn, fresh bool, err error) {
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
func (f *Client) claim(ctx context.Context, p peer.ID) (*fetchConn, chan struct{}, error) {
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
func (f *Client) dial(ctx context.Context, p peer.ID) (*fetchConn, error) {
	s, err := f.h.NewStream(ctx, p, p2p.FetchProtocol)
	if err != nil {
		return nil, fmt.Errorf("fetch: open stream to %s: %w", p, err)
	}
	c := &fetchConn{
		p:      p,
		s:      s,
		fw:     p2p.NewFrameWriter(s),
		slots:  make(chan struct{}, MaxInFlight),
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
	fw *p2p.FrameWriter

	wmu   sync.Mutex // serialises writes; appending to queue happens under it too
	slots chan struct{}

	mu     sync.Mutex
	queue  []*fetchCall // requests sent, in order, awaiting replies
	nextID uint64
	err    error
	failed chan struct{}
	used   time.Time
	// draining is set once Close closed the write side: the reader reads
	// the replies still due until the deadline Close set, then closes the
	// stream.
	draining bool
}

type fetchCall struct {
	id    uint64
	reply chan *reply // cap 1
	// abandoned is set under fetchConn.mu when the caller gave up
	// waiting (its context ended): the reader recycles the reply.
	abandoned bool
}

// reply is a decoded FetchReply and the pooled frame its data lies in (nil
// when decoded into copies).
type reply struct {
	*pb.FetchReply
	frame []byte
}

// release recycles the reply's frame; its Data must not be used after.
func (r *reply) release() {
	recycleFrame(r.frame)
	r.frame, r.Data = nil, nil
}

// recycleFrame is p2p.RecycleFrame, which hands every reply frame the
// Client read back to the pool; tests count the frames handed back.
var recycleFrame = p2p.RecycleFrame

// usable reports whether the stream can take another request: not failed,
// and not idle so long that the provider may be closing it.
func (c *fetchConn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && (len(c.queue) > 0 || time.Since(c.used) < IdleTimeout/2)
}

func (c *fetchConn) close() {
	c.fail(fmt.Errorf("%w: idle", ErrStreamClosed))
	_ = c.s.Close()
}

// fail records the stream's first failure, which the calls waiting on it
// and later ones return.
func (c *fetchConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(err)
}

// failLocked is fail under mu.
func (c *fetchConn) failLocked(err error) {
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
func (c *fetchConn) call(ctx context.Context, req *pb.FetchRequest) (*reply, bool, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-c.failed:
		return nil, false, c.failure()
	}
	call := &fetchCall{reply: make(chan *reply, 1)}
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
		_ = c.s.SetReadDeadline(time.Now().Add(IdleTimeout))
	}
	c.queue = append(c.queue, call)
	c.used = time.Now()
	c.mu.Unlock()
	_ = c.s.SetWriteDeadline(time.Now().Add(IdleTimeout))
	err := c.fw.WriteMsg(req)
	if err == nil {
		err = c.fw.Flush()
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
		c.abandon(call)
		return nil, false, ctx.Err()
	}
}

// abandon gives up waiting for call's reply: the reader recycles it when
// it comes, or it is recycled now if the reader handed it meanwhile.
func (c *fetchConn) abandon(call *fetchCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case r := <-call.reply:
		r.release()
	default:
		call.abandoned = true
	}
}
