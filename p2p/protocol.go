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
// and when the host closes; reads and writes on s fail after the deadline too.
// Returning nil closes the stream; returning an error resets it, which the
// remote side sees as an error rather than a clean end.
type HandlerFunc func(ctx context.Context, s network.Stream) error

// Protocol registers stream handlers and opens streams on a host, with
// deadlines, metrics and contained failures. Get it from Host.Protocol. Its
// methods are safe for concurrent use.
type Protocol struct {
	host    host.Host
	log     *slog.Logger
	metrics *metrics
	timeout time.Duration

	ctx    context.Context // cancelled by shutdown
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	ids     map[protocol.ID]struct{}
	running sync.WaitGroup // handlers in flight
}

func newProtocol(h host.Host, log *slog.Logger, m *metrics, timeout time.Duration) *Protocol {
	ctx, cancel := context.WithCancel(context.Background())
	return &Protocol{
		host:    h,
		log:     log,
		metrics: m,
		timeout: timeout,
		ctx:     ctx,
		cancel:  cancel,
		ids:     make(map[protocol.ID]struct{}),
	}
}

// SetHandler serves protocol id with fn, replacing an earlier handler of id.
//
// Each inbound stream runs fn in its own goroutine with a context and a stream
// deadline of the host's stream timeout. When fn returns an error the stream is
// reset and the error logged at Debug. When fn panics the panic goes no
// further: the stream is reset and the panic logged at Error with its stack,
// and the host keeps serving. Once the host is closing, SetHandler does
// nothing.
func (p *Protocol) SetHandler(id protocol.ID, fn HandlerFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.ids[id] = struct{}{}
	p.host.SetStreamHandler(id, func(s network.Stream) { p.serve(id, fn, s) })
}

// RemoveHandler stops serving protocol id. Streams already being served run
// to their end.
func (p *Protocol) RemoveHandler(id protocol.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ids, id)
	p.host.RemoveStreamHandler(id)
}

// enter registers a handler run, unless the protocol is shut down.
func (p *Protocol) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.running.Add(1)
	return true
}

func (p *Protocol) serve(id protocol.ID, fn HandlerFunc, s network.Stream) {
	if !p.enter() {
		_ = s.Reset()
		return
	}
	defer p.running.Done()

	deadline := time.Now().Add(p.timeout)
	ctx, cancel := context.WithDeadline(p.ctx, deadline)
	defer cancel()
	_ = s.SetDeadline(deadline)
	// Unblock a handler stuck in a read or write when ctx ends early, as on
	// Close. Stopped before cancel runs, so a served stream is not reset.
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	remote := s.Conn().RemotePeer()
	defer func() {
		if r := recover(); r != nil {
			_ = s.Reset()
			p.log.Error("stream handler panicked; stream reset",
				"protocol", id, "remote", remote, "panic", r, "stack", string(debug.Stack()))
			p.metrics.handlerFailed(id, handlerErrPanic)
		}
	}()

	if err := fn(ctx, s); err != nil {
		_ = s.Reset()
		p.log.Debug("stream handler failed; stream reset", "protocol", id, "remote", remote, "err", err)
		p.metrics.handlerFailed(id, handlerErrError)
		return
	}
	_ = s.Close()
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
	for id := range p.ids {
		p.host.RemoveStreamHandler(id)
	}
	clear(p.ids)
	p.mu.Unlock()
	p.cancel()
}

// wait returns when no handler is running. Call after shutdown.
func (p *Protocol) wait() { p.running.Wait() }
