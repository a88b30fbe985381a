package provider

import (
	"bufio"
	"encoding/binary"
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
	"github.com/satchel-net/satchel/p2p"
	"google.golang.org/protobuf/proto"
)

// Stream plumbing the store and fetch protocols share: serving a protocol on
// hosts, idle deadlines, reading length-prefixed frames, and the errors a
// caller's stream fails with.

// streamServer is what every protocol handler of the package needs around
// its per-stream loop: it registers the handler on hosts, keeps the streams
// being served so Close can reset them and wait for their goroutines,
// recovers a serving goroutine from a panic, and ends each stream: reset
// after an error, closed otherwise. A handler embeds it.
type streamServer struct {
	protocol protocol.ID
	name     string       // the protocol's short name, e.g. "store"
	log      *slog.Logger // carries component=name; handlers log through it

	mu      sync.Mutex
	closed  bool
	hosts   []host.Host
	streams map[network.Stream]struct{}
	running sync.WaitGroup
}

// streamFunc serves one stream until its peer is done with it. An error
// resets the stream; nil closes it. log carries the stream's remote peer.
type streamFunc func(s network.Stream, log *slog.Logger) error

// newStreamServer returns a server of protocol p logging through log (nil:
// slog.Default()) with component=name.
func newStreamServer(p protocol.ID, name string, log *slog.Logger) *streamServer {
	if log == nil {
		log = slog.Default()
	}
	return &streamServer{
		protocol: p,
		name:     name,
		log:      log.With("component", name),
		streams:  make(map[network.Stream]struct{}),
	}
}

// register serves the protocol on hst with fn, unless the server is closed.
func (sv *streamServer) register(hst host.Host, fn streamFunc) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closed {
		return
	}
	sv.hosts = append(sv.hosts, hst)
	hst.SetStreamHandler(sv.protocol, func(s network.Stream) { sv.serve(s, fn) })
}

// close removes the handler from its hosts, resets the streams being served
// and waits for their goroutines to return. It is idempotent.
func (sv *streamServer) close() {
	sv.mu.Lock()
	if !sv.closed {
		sv.closed = true
		for _, hst := range sv.hosts {
			hst.RemoveStreamHandler(sv.protocol)
		}
		for s := range sv.streams {
			_ = s.Reset()
		}
	}
	sv.mu.Unlock()
	sv.running.Wait()
}

// serve runs fn on s, tracked as a live stream, and ends s by fn's result.
// A panic in fn resets s and is logged.
func (sv *streamServer) serve(s network.Stream, fn streamFunc) {
	if !sv.track(s) {
		_ = s.Reset()
		return
	}
	defer sv.untrack(s)
	log := sv.log.With("remote", s.Conn().RemotePeer())
	defer func() {
		if r := recover(); r != nil {
			_ = s.Reset()
			log.Error(sv.name+" handler panicked; stream reset", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if err := fn(s, log); err != nil {
		_ = s.Reset()
		log.Debug(sv.name+" stream reset", "err", err)
		return
	}
	_ = s.Close()
}

// track records s as served, or reports false once the server is closed.
func (sv *streamServer) track(s network.Stream) bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closed {
		return false
	}
	sv.streams[s] = struct{}{}
	sv.running.Add(1)
	return true
}

func (sv *streamServer) untrack(s network.Stream) {
	sv.mu.Lock()
	delete(sv.streams, s)
	sv.mu.Unlock()
	sv.running.Done()
}

// idleDeadline is the deadline of a stream read or write starting now: a
// stream with work pending on which no frame moves for StreamIdleTimeout is
// given up.
func idleDeadline() time.Time { return time.Now().Add(StreamIdleTimeout) }

// isTimeout reports whether err is a stream deadline passing.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// readFrameBody reads a length prefix, checks it against MaxFrame and reads
// the body into a buffer of exactly that size.
func readFrameBody(br *bufio.Reader) ([]byte, error) {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	if size > MaxFrame {
		return nil, fmt.Errorf("%w: frame announces %d bytes, limit is %d", p2p.ErrFrameTooLarge, size, MaxFrame)
	}
	// Allocate as bytes arrive, not as announced: a peer that announces a
	// large frame and stalls pins at most 8 times what it sent (and
	// framePrealloc before it sent anything). The buffer grows fourfold,
	// straight to the announced size once that is within reach, so a
	// 1 MiB chunk costs three allocations and 320 KiB of copying.
	n := int(size)
	body := make([]byte, 0, min(n, framePrealloc))
	for {
		m, err := io.ReadFull(br, body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil {
			return nil, truncated(len(body), n, err)
		}
		if len(body) == n {
			return body, nil
		}
		next := 4 * cap(body)
		if next >= n/2 {
			next = n
		}
		grown := make([]byte, len(body), min(next, n))
		copy(grown, body)
		body = grown
	}
}

// truncated is readFrameBody's error for a body that ended after got of n
// bytes.
func truncated(got, n int, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("frame body truncated after %d of %d bytes: %w", got, n, err)
}

// framePrealloc is the most readFrameBody allocates for a frame before its
// bytes arrive.
const framePrealloc = 64 << 10

// readFrame reads one frame into m, checking its announced length against
// MaxFrame before allocating. decode decodes the body itself when it can
// (aliasing bytes into it, not copying them) and reports whether it did;
// otherwise proto.Unmarshal decodes it. what names the frame in errors.
func readFrame(br *bufio.Reader, m proto.Message, what string, decode func(body []byte) bool) error {
	body, err := readFrameBody(br)
	if err != nil {
		return err
	}
	if decode(body) {
		return nil
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("undecodable %s of %d bytes: %w", what, len(body), err)
	}
	return nil
}

// readFailure is why a caller's stream to p failed on reading a reply: p
// closed it (io.EOF) or the read failed. It wraps ErrStreamClosed.
func readFailure(p peer.ID, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s closed the stream", ErrStreamClosed, p)
	}
	return fmt.Errorf("%w: read from %s: %w", ErrStreamClosed, p, err)
}
