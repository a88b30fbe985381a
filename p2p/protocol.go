package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// Protocol IDs of the Satchel wire protocols (docs/PROTOCOL.md). Each stream
// protocol exchanges length-prefixed protobuf frames (see ReadMsg).
const (
	// ProtocolPrefix is the prefix of every Satchel protocol ID, the DHT's
	// included.
	ProtocolPrefix protocol.ID = "/satchel"

	// StoreProtocol pushes chunks to a storage provider and collects signed
	// receipts.
	StoreProtocol protocol.ID = "/satchel/store/1.0.0"
	// FetchProtocol reads chunks from a storage provider.
	FetchProtocol protocol.ID = "/satchel/fetch/1.0.0"
	// ContractProtocol carries storage contract offers and consignments.
	ContractProtocol protocol.ID = "/satchel/contract/1.0.0"
	// AuditProtocol challenges a provider to prove it holds data.
	AuditProtocol protocol.ID = "/satchel/audit/1.0.0"
	// KadProtocol is the Kademlia DHT protocol: the libp2p Kademlia wire
	// protocol under the /satchel prefix, so Satchel nodes form their own DHT
	// apart from IPFS's.
	KadProtocol protocol.ID = ProtocolPrefix + "/kad/1.0.0"
)

// DefaultStreamTimeout bounds one stream exchange, inbound or outbound, unless
// WithStreamTimeout or the caller's context says otherwise. It leaves room for
// a few full-size frames over a slow link.
const DefaultStreamTimeout = time.Minute

// A HandlerFunc serves one inbound stream. ctx ends at the stream's deadline
// (when the handler has one), when the handler is removed and when the host
// closes; reads and writes on s fail after the deadline too. Returning nil
// closes the stream; returning an error resets it, which the remote side sees
// as an error rather than a clean end.
type HandlerFunc func(ctx context.Context, s network.Stream) error

// A HandlerOption configures one SetHandler registration.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	idle time.Duration // >0: no whole-stream deadline, frames keep it alive
}

// WithIdleTimeout serves a long-lived protocol: the stream has no overall
// deadline and its context none either; instead the handler's frame reader and
// writer (Protocol.NewFrameReader and NewFrameWriter) give every read and write
// a deadline of d from when it starts, so a stream lives as long as frames move
// and is given up after d without one.
func WithIdleTimeout(d time.Duration) HandlerOption {
	return func(c *handlerConfig) { c.idle = d }
}

// Protocol registers stream handlers and opens streams on a host, with
// deadlines, metrics and contained failures: every Satchel stream protocol is
// served through it. Get it from Host.Protocol. Its methods are safe for
// concurrent use.
type Protocol struct {
	host    host.Host
	log     *slog.Logger
	metrics *metrics
	timeout time.Duration

	mu       sync.Mutex
	closed   bool
	handlers map[protocol.ID]*registration
	running  sync.WaitGroup // handlers in flight, of every registration
}

// registration is one SetHandler: its context ends when the handler is
// removed or replaced, or the host closes, and its streams are counted so
// RemoveHandler can wait for them.
type registration struct {
	fn      HandlerFunc
	cfg     handlerConfig
	ctx     context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup
}

func newProtocol(h host.Host, log *slog.Logger, m *metrics, timeout time.Duration) *Protocol {
	return &Protocol{
		host:     h,
		log:      log,
		metrics:  m,
		timeout:  timeout,
		handlers: make(map[protocol.ID]*registration),
	}
}

// SetHandler serves protocol id with fn, replacing (and stopping, as
// RemoveHandler does) an earlier handler of id.
//
// Each inbound stream runs fn in its own goroutine. By default the stream and
// its context get a deadline of the host's stream timeout; WithIdleTimeout
// gives a long-lived protocol per-frame deadlines instead. When fn returns an
// error the stream is reset and the error logged at Debug and counted. When
// fn panics the panic goes no further: the stream is reset, the panic logged
// at Error with its stack and counted (satchel_p2p_handler_failures_total
// {kind="panic"}), and the host keeps serving. Goroutines a handler starts
// contain their panics the same way through Go. Once the host is closing,
// SetHandler does nothing.
func (p *Protocol) SetHandler(id protocol.ID, fn HandlerFunc, opts ...HandlerOption) {
	reg := &registration{fn: fn}
	for _, o := range opts {
		o(&reg.cfg)
	}
	reg.ctx, reg.cancel = context.WithCancel(context.Background())
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		reg.cancel()
		return
	}
	old := p.handlers[id]
	p.handlers[id] = reg
	p.host.SetStreamHandler(id, func(s network.Stream) { p.serve(id, reg, s) })
	p.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// RemoveHandler stops serving protocol id: new streams are refused, the
// streams being served are reset (their handlers see ctx end), and
// RemoveHandler returns when those handlers have returned. A handler must not
// remove itself.
func (p *Protocol) RemoveHandler(id protocol.ID) {
	p.mu.Lock()
	reg := p.handlers[id]
	if reg != nil {
		delete(p.handlers, id)
		p.host.RemoveStreamHandler(id)
	}
	p.mu.Unlock()
	if reg != nil {
		reg.stop()
	}
}

// stop ends the registration's streams and waits for their handlers.
func (r *registration) stop() {
	r.cancel()
	r.running.Wait()
}

// enter registers a handler run, unless the protocol is shut down or reg was
// replaced or removed.
func (p *Protocol) enter(id protocol.ID, reg *registration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.handlers[id] != reg {
		return false
	}
	p.running.Add(1)
	reg.running.Add(1)
	return true
}

func (p *Protocol) serve(id protocol.ID, reg *registration, s network.Stream) {
	if !p.enter(id, reg) {
		_ = s.Reset()
		return
	}
	defer p.running.Done()
	defer reg.running.Done()

	ctx, cancel := context.WithCancel(reg.ctx)
	defer cancel()
	if reg.cfg.idle <= 0 {
		deadline := time.Now().Add(p.timeout)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		_ = s.SetDeadline(deadline)
	}
	// Unblock a handler stuck in a read or write when ctx ends early, as on
	// Close. Stopped before cancel runs, so a served stream is not reset.
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	remote := s.Conn().RemotePeer()
	defer func() {
		if r := recover(); r != nil {
			_ = s.Reset()
			p.panicked(id, remote, r)
		}
	}()

	if err := reg.fn(ctx, s); err != nil {
		_ = s.Reset()
		p.log.Debug("stream handler failed; stream reset", "protocol", id, "remote", remote, "err", err)
		p.metrics.handlerFailed(id, handlerErrError)
		return
	}
	_ = s.Close()
}

// ErrHandlerPanic is what Go reports for a function that panicked.
var ErrHandlerPanic = errors.New("p2p: handler panicked")

// Go runs fn, on the calling goroutine, as part of serving protocol id: a
// panic in fn is contained, logged with its stack, counted like a handler's
// panic, and returned as an error wrapping ErrHandlerPanic. Handlers that
// spread one stream's work over goroutines run each through Go, so a panic in
// any of them is contained the way a panic in the handler itself is.
func (p *Protocol) Go(id protocol.ID, remote peer.ID, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.panicked(id, remote, r)
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	fn()
	return nil
}

func (p *Protocol) panicked(id protocol.ID, remote peer.ID, r any) {
	p.log.Error("stream handler panicked; stream reset",
		"protocol", id, "remote", remote, "panic", r, "stack", string(debug.Stack()))
	p.metrics.handlerFailed(id, handlerErrPanic)
}

// NewStream opens a stream to peer p speaking the first of ids it supports,
// connecting first if needed. The stream's deadline is ctx's deadline, or the
// host's stream timeout from now when ctx has none. The caller must Close the
// stream when done, or Reset it on error.
func (p *Protocol) NewStream(ctx context.Context, to peer.ID, ids ...protocol.ID) (network.Stream, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.timeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	s, err := p.host.NewStream(ctx, to, ids...)
	if err != nil {
		return nil, fmt.Errorf("p2p: open %v stream to %s: %w", ids, to, err)
	}
	if err := s.SetDeadline(deadline); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("p2p: open %v stream to %s: set deadline: %w", ids, to, err)
	}
	return s, nil
}

// WriteMsg writes m to s as one frame (see WriteMsg), counting it in the
// metrics under s's protocol.
func (p *Protocol) WriteMsg(s network.Stream, m proto.Message) error {
	n, err := writeMsg(s, m)
	if err != nil {
		p.metrics.frameError(s.Protocol(), frameErrWrite)
		return err
	}
	p.metrics.frameSent(s.Protocol(), n)
	return nil
}

// ReadMsg reads one frame of at most maxSize bytes from s into m (see
// ReadMsg), counting it in the metrics under s's protocol. After an error other
// than io.EOF the stream is out of sync; reset it.
func (p *Protocol) ReadMsg(s network.Stream, m proto.Message, maxSize int) error {
	n, err := readMsg(s, m, maxSize)
	switch {
	case err == nil:
		p.metrics.frameReceived(s.Protocol(), n)
	case errors.Is(err, io.EOF):
		// A clean end between frames.
	case errors.Is(err, ErrFrameTooLarge):
		p.metrics.frameError(s.Protocol(), frameErrTooLarge)
	case errors.Is(err, io.ErrUnexpectedEOF):
		p.metrics.frameError(s.Protocol(), frameErrTruncated)
	case isDecodeError(err):
		p.metrics.frameError(s.Protocol(), frameErrDecode)
	default:
		p.metrics.frameError(s.Protocol(), frameErrRead)
	}
	return err
}

// shutdown stops serving: handlers are removed, new streams are refused and
// running handlers see their context end.
func (p *Protocol) shutdown() {
	p.mu.Lock()
	p.closed = true
	regs := make([]*registration, 0, len(p.handlers))
	for id, reg := range p.handlers {
		p.host.RemoveStreamHandler(id)
		regs = append(regs, reg)
	}
	clear(p.handlers)
	p.mu.Unlock()
	for _, reg := range regs {
		reg.cancel()
	}
}

// wait returns when no handler is running. Call after shutdown.
func (p *Protocol) wait() { p.running.Wait() }

// Registration is what a protocol package's handler embeds to be served by
// one Protocol at a time: Register it on a host's Protocol, Close it to stop
// serving. The zero value is ready to use.
type Registration struct {
	mu    sync.Mutex
	proto *Protocol
	id    protocol.ID
}

// Serve registers fn for id on p (see SetHandler), replacing an earlier
// registration of the same Registration.
func (r *Registration) Serve(p *Protocol, id protocol.ID, fn HandlerFunc, opts ...HandlerOption) {
	r.mu.Lock()
	r.proto, r.id = p, id
	r.mu.Unlock()
	p.SetHandler(id, fn, opts...)
}

// Protocol returns the Protocol the handler is served by, or nil once closed
// or before Serve.
func (r *Registration) Protocol() *Protocol {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proto
}

// Close stops serving: the handler is removed, the streams being served are
// reset, and Close returns when their goroutines have. It is idempotent.
func (r *Registration) Close() error {
	r.mu.Lock()
	p, id := r.proto, r.id
	r.proto = nil
	r.mu.Unlock()
	if p != nil {
		p.RemoveHandler(id)
	}
	return nil
}
