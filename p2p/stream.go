package p2p

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Buffered frame I/O on one stream, the way every Satchel protocol reads and
// writes: frames are checked against a limit before allocation, every read and
// write may carry an idle deadline, and frames and their failures are counted
// in the host's metrics under the stream's protocol.

// frameBufSize is the buffer of a FrameReader or FrameWriter: enough for
// the small frames of a pipelined exchange to go out in one write.
const frameBufSize = 64 << 10

// A FrameReader reads length-prefixed frames from one stream. It is not safe
// for concurrent use.
type FrameReader struct {
	br    *bufio.Reader
	s     network.Stream // nil: no deadlines
	idle  time.Duration
	max   int
	proto protocol.ID
	m     *metrics

	reserve bool // reserve each large frame's body in s's scope while reading it
	whole   bool // allocate each body at its announced length at once
	limits  WireLimits
}

// NewFrameReader returns a reader of frames of at most maxFrame bytes (zero:
// DefaultMaxFrame) from s, counted in the host's metrics. When idle is
// positive every read gets a deadline of idle from when it starts.
func (p *Protocol) NewFrameReader(s network.Stream, maxFrame int, idle time.Duration) *FrameReader {
	r := NewFrameReader(s, maxFrame)
	r.s, r.idle, r.proto, r.m = s, idle, s.Protocol(), p.metrics
	return r
}

// NewFrameReader returns a reader of frames of at most maxFrame bytes (zero:
// DefaultMaxFrame) from r, for callers without a Protocol (nothing counted, no
// deadlines set).
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameReader{br: bufio.NewReaderSize(r, frameBufSize), max: maxFrame}
}

// ReadFrame reads one frame and returns its body, which the caller owns. It
// returns io.EOF, unwrapped, when the stream ends cleanly before a frame, an
// error wrapping ErrFrameTooLarge for a frame over the limit (checked before
// allocating), and one wrapping io.ErrUnexpectedEOF for a frame cut short.
// After any error but io.EOF the stream is out of sync: reset it.
func (r *FrameReader) ReadFrame() ([]byte, error) {
	if r.s != nil && r.idle > 0 {
		_ = r.s.SetReadDeadline(time.Now().Add(r.idle))
	}
	var reserve func(int) (func(), error)
	if r.reserve && r.s != nil {
		reserve = func(n int) (func(), error) {
			if err := Reserve(r.s, n); err != nil {
				return nil, err
			}
			return func() { Release(r.s, n) }, nil
		}
	}
	body, n, err := readFrameReserving(r.br, r.max, reserve, r.whole)
	switch {
	case err == nil:
		r.m.frameReceived(r.proto, n)
	case errors.Is(err, io.EOF):
	case errors.Is(err, ErrFrameTooLarge):
		r.m.frameError(r.proto, frameErrTooLarge)
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.m.frameError(r.proto, frameErrTruncated)
	default:
		r.m.frameError(r.proto, frameErrRead)
	}
	return body, err
}

// ReserveFrames makes the reader reserve each frame body over 64 KiB in
// its stream's resource scope (see Reserve) before allocating it, and
// release it once the body is read, so that frames being read on every
// stream together stay within the host's memory budgets. A frame the budget
// has no room for is not read: ReadFrame returns an error wrapping
// ErrMemoryBudget, and the stream must be reset. A handler that keeps a frame
// past ReadFrame reserves it again for as long as it keeps it. Bodies come
// from the frame pool: hand each back with RecycleFrame once done with it.
// It returns r.
func (r *FrameReader) ReserveFrames() *FrameReader {
	r.reserve = true
	return r
}

// WholeFrames makes the reader allocate each frame's body at its announced
// length (within the reader's limit) as soon as the length is read, instead
// of growing it as bytes arrive, which saves copying and allocating on
// large frames. Use it where a peer that announces a frame and stalls may
// pin one whole frame: a reader that reads one frame at a time, on a stream
// it opened, with replies it asked for (frames reserved with ReserveFrames
// are always read whole). Bodies come from the frame pool: hand each back
// with RecycleFrame once done with it. It returns r.
func (r *FrameReader) WholeFrames() *FrameReader {
	r.whole = true
	return r
}

// LimitElements makes ReadMsg check each frame against limits (CheckWire)
// before decoding it: a frame over them is not decoded, and ReadMsg returns
// an error wrapping ErrTooManyElements (reset the stream). Callers that
// decode frames read with ReadFrame themselves run Check first. It returns
// r.
func (r *FrameReader) LimitElements(limits WireLimits) *FrameReader {
	r.limits = limits
	return r
}

// Check checks body, a frame read with ReadFrame, against the reader's
// LimitElements (CheckWire), counting a frame over them.
func (r *FrameReader) Check(body []byte) error {
	if r.limits == nil {
		return nil
	}
	if err := CheckWire(body, r.limits); err != nil {
		if errors.Is(err, ErrTooManyElements) {
			r.m.frameError(r.proto, frameErrTooMany)
		} else {
			r.m.frameError(r.proto, frameErrDecode)
		}
		return fmt.Errorf("p2p: %w: frame of %d bytes: %w", errMalformed, len(body), err)
	}
	return nil
}

// ReadMsg reads one frame and unmarshals it into m (see ReadFrame), after
// checking it against the reader's LimitElements.
func (r *FrameReader) ReadMsg(m proto.Message) error {
	body, err := r.ReadFrame()
	if err != nil {
		return err
	}
	if err := r.Check(body); err != nil {
		RecycleFrame(body)
		return err
	}
	err = proto.Unmarshal(body, m)
	RecycleFrame(body) // Unmarshal copied what m keeps
	if err != nil {
		r.m.frameError(r.proto, frameErrDecode)
		return fmt.Errorf("p2p: %w: %s frame of %d bytes: %w", errMalformed, m.ProtoReflect().Descriptor().FullName(), len(body), err)
	}
	return nil
}

// CountDecodeError counts a frame the caller failed to decode itself (a
// frame read with ReadFrame and decoded by hand).
func (r *FrameReader) CountDecodeError() { r.m.frameError(r.proto, frameErrDecode) }

// A FrameWriter writes length-prefixed frames to one stream through a buffer;
// Flush sends what is buffered. It is not safe for concurrent use.
type FrameWriter struct {
	bw    *bufio.Writer
	s     network.Stream // nil: no deadlines
	idle  time.Duration
	proto protocol.ID
	m     *metrics
}

// NewFrameWriter returns a buffered frame writer to s, counted in the host's
// metrics. When idle is positive every write gets a deadline of idle from
// when it starts.
func (p *Protocol) NewFrameWriter(s network.Stream, idle time.Duration) *FrameWriter {
	w := NewFrameWriter(s)
	w.s, w.idle, w.proto, w.m = s, idle, s.Protocol(), p.metrics
	return w
}

// NewFrameWriter returns a buffered frame writer to w, for callers without a
// Protocol (nothing counted, no deadlines set).
func NewFrameWriter(w io.Writer) *FrameWriter {
	return &FrameWriter{bw: bufio.NewWriterSize(w, frameBufSize)}
}

// WriteMsg marshals m into one frame.
func (w *FrameWriter) WriteMsg(m proto.Message) error {
	size := proto.Size(m)
	buf := make([]byte, 0, protowire.SizeVarint(uint64(size))+size)
	buf = protowire.AppendVarint(buf, uint64(size))
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return fmt.Errorf("p2p: marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return w.write(len(buf), buf)
}

// WriteFrame writes one frame whose body is the concatenation of parts, so
// a message encoded by hand can send a large byte field straight from the
// caller's buffer, with no copy into a marshalled message.
func (w *FrameWriter) WriteFrame(parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	prefix := protowire.AppendVarint(make([]byte, 0, maxVarintLen), uint64(n))
	return w.write(len(prefix)+n, append([][]byte{prefix}, parts...)...)
}

func (w *FrameWriter) write(total int, parts ...[]byte) error {
	if w.s != nil && w.idle > 0 {
		_ = w.s.SetWriteDeadline(time.Now().Add(w.idle))
	}
	for _, p := range parts {
		if _, err := w.bw.Write(p); err != nil {
			w.m.frameError(w.proto, frameErrWrite)
			return fmt.Errorf("p2p: write frame: %w", err)
		}
	}
	w.m.frameSent(w.proto, total)
	return nil
}

// Buffered reports how many bytes wait in the buffer for Flush.
func (w *FrameWriter) Buffered() int { return w.bw.Buffered() }

// Flush sends the buffered frames.
func (w *FrameWriter) Flush() error {
	if w.s != nil && w.idle > 0 {
		_ = w.s.SetWriteDeadline(time.Now().Add(w.idle))
	}
	if err := w.bw.Flush(); err != nil {
		w.m.frameError(w.proto, frameErrWrite)
		return fmt.Errorf("p2p: write frame: %w", err)
	}
	return nil
}

// IsTimeout reports whether err is a stream deadline passing.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Errors of a caller's side of a stream protocol, shared by every protocol
// package so callers can branch on them whichever protocol failed.
var (
	// ErrStreamClosed means a stream was closed or failed; calls still in
	// flight on it fail with an error wrapping it. Open a new one.
	ErrStreamClosed = errors.New("p2p: stream closed")
	// ErrProtocol means the remote peer answered out of the protocol's
	// order or with a malformed reply.
	ErrProtocol = errors.New("p2p: protocol violation")
)

// ReadFailure is why a caller's stream to remote failed on reading a reply:
// remote closed it (io.EOF) or the read failed. It wraps ErrStreamClosed.
func ReadFailure(remote fmt.Stringer, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s closed the stream", ErrStreamClosed, remote)
	}
	return fmt.Errorf("%w: read from %s: %w", ErrStreamClosed, remote, err)
}
