package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Frame limits. A frame is one protobuf message preceded by its length as an
// unsigned varint (the framing of libp2p's msgio "varint" codec and of
// protodelim), so an independent peer can speak every Satchel stream protocol
// with nothing but a varint reader and a protobuf decoder.
const (
	// DefaultMaxFrame is the largest frame a reader accepts when the caller
	// passes no limit: a 4 MiB payload (four default-size chunks) plus 64 KiB
	// of room for the fields around it.
	DefaultMaxFrame = 4<<20 + 64<<10

	// maxVarintLen is the longest encoding of a 64-bit uvarint.
	maxVarintLen = binary.MaxVarintLen64

	// preallocLimit is the largest body a reader allocates up front. Longer
	// bodies (still within the limit) grow their buffer as bytes arrive, so a
	// peer that announces a large frame and then stalls does not pin the whole
	// frame's worth of memory.
	preallocLimit = 64 << 10
)

// ErrFrameTooLarge is returned by ReadMsg when a frame announces a length above
// the reader's limit. The check happens before any buffer for the body is
// allocated; the stream is then out of sync and must be reset.
var ErrFrameTooLarge = errors.New("p2p: frame exceeds the maximum size")

// WriteMsg marshals m and writes it to w as one length-prefixed frame, in a
// single Write call. It does not check a size limit: the reader enforces its
// own, and a frame above it is refused there with ErrFrameTooLarge.
func WriteMsg(w io.Writer, m proto.Message) error {
	_, err := writeMsg(w, m)
	return err
}

// writeMsg is WriteMsg that also reports how many bytes it wrote.
func writeMsg(w io.Writer, m proto.Message) (int, error) {
	size := proto.Size(m)
	buf := make([]byte, 0, protowire.SizeVarint(uint64(size))+size)
	buf = protowire.AppendVarint(buf, uint64(size))
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return 0, fmt.Errorf("p2p: marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	n, err := w.Write(buf)
	if err != nil {
		return n, fmt.Errorf("p2p: write frame: %w", err)
	}
	return n, nil
}

// ReadMsg reads one length-prefixed frame from r and unmarshals it into m.
//
// maxSize bounds the frame body in bytes; zero or a negative value means
// DefaultMaxFrame. The announced length is checked against maxSize before
// anything is allocated for the body: a frame claiming more is refused with an
// error wrapping ErrFrameTooLarge.
//
// ReadMsg returns io.EOF, unwrapped, when r ends cleanly before a frame starts,
// so a caller can read frames until EOF; a stream that ends inside a frame gives
// an error wrapping io.ErrUnexpectedEOF. ReadMsg never reads past the frame, so
// r may be a raw stream; when r is an io.ByteReader (a bufio.Reader, say) the
// length prefix is read from it directly instead of one Read call per byte.
func ReadMsg(r io.Reader, m proto.Message, maxSize int) error {
	_, err := readMsg(r, m, maxSize)
	return err
}

// readMsg is ReadMsg that also reports how many bytes it consumed.
func readMsg(r io.Reader, m proto.Message, maxSize int) (int, error) {
	body, n, err := readFrame(r, maxSize)
	if err != nil {
		return n, err
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return n, fmt.Errorf("p2p: %w: %s frame of %d bytes: %w", errMalformed, m.ProtoReflect().Descriptor().FullName(), len(body), err)
	}
	return n, nil
}

// readFrame reads one frame's body of at most maxSize bytes (zero or less:
// DefaultMaxFrame), reporting the bytes consumed, prefix included. The
// announced length is checked before anything is allocated for the body.
func readFrame(r io.Reader, maxSize int) ([]byte, int, error) {
	return readFrameReserving(r, maxSize, nil, false)
}

// readFrameReserving is readFrame that, when reserve is not nil, reserves
// the announced body length with it before allocating, and releases it once
// the body is read: a frame that would take the reader past its memory budget
// is refused unread (an error wrapping ErrMemoryBudget). A reserved body, or
// any body when whole is set, is allocated at its announced length at once
// rather than grown as bytes arrive (which copies a 1 MiB body's first
// 320 KiB twice), from the frame pool (see RecycleFrame): the reservation,
// or the caller, bounds what a peer that stalls can pin.
func readFrameReserving(r io.Reader, maxSize int, reserve func(int) (func(), error), whole bool) ([]byte, int, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrame
	}
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &byteReader{r: r}
	}
	size, prefixLen, err := readUvarint(br)
	if err != nil {
		return nil, prefixLen, err
	}
	if size > uint64(maxSize) {
		return nil, prefixLen, fmt.Errorf("%w: frame announces %d bytes, limit is %d", ErrFrameTooLarge, size, maxSize)
	}
	if reserve != nil && size > preallocLimit {
		release, err := reserve(int(size))
		if err != nil {
			return nil, prefixLen, err
		}
		defer release()
		whole = true
	}
	if whole {
		body := frameBuf(int(size))
		n, err := io.ReadFull(r, body)
		if err != nil {
			return body[:n], prefixLen + n, truncated(err, n, int(size))
		}
		return body, prefixLen + n, nil
	}
	body, err := readBody(r, int(size))
	return body, prefixLen + len(body), err
}

// readBody reads an n-byte frame body into a buffer of exactly n bytes,
// allocating as bytes arrive, not as announced: a peer that announces a large
// frame and stalls pins at most 8 times what it sent (and preallocLimit before
// it sent anything). The buffer grows fourfold, straight to n once that is
// within reach, so a 1 MiB body costs three allocations and 320 KiB of
// copying.
func readBody(r io.Reader, n int) ([]byte, error) {
	body := make([]byte, 0, min(n, preallocLimit))
	for {
		m, err := io.ReadFull(r, body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil {
			return body, truncated(err, len(body), n)
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

// truncated turns a short read of a frame body into an error that says so.
func truncated(err error, got, want int) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("p2p: frame body truncated after %d of %d bytes: %w", got, want, err)
}

// readUvarint reads a length prefix. Unlike binary.ReadUvarint it reports the
// bytes consumed and turns an EOF inside the prefix into io.ErrUnexpectedEOF.
func readUvarint(br io.ByteReader) (uint64, int, error) {
	var x uint64
	var s uint
	for i := range maxVarintLen {
		b, err := br.ReadByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, 0, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, i, fmt.Errorf("p2p: read frame length: %w", err)
		}
		if b < 0x80 {
			if i == maxVarintLen-1 && b > 1 {
				return 0, i + 1, fmt.Errorf("p2p: read frame length: %w", errVarintOverflow)
			}
			return x | uint64(b)<<s, i + 1, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, maxVarintLen, fmt.Errorf("p2p: read frame length: %w", errVarintOverflow)
}

var (
	errVarintOverflow = errors.New("varint overflows 64 bits")
	errMalformed      = errors.New("malformed frame")
)

// isDecodeError reports whether err is a frame that did not decode.
func isDecodeError(err error) bool { return errors.Is(err, errMalformed) }

// byteReader reads single bytes from a reader that is not an io.ByteReader,
// without reading ahead: the bytes after the prefix stay in the stream.
type byteReader struct {
	r   io.Reader
	buf [1]byte
}

func (b *byteReader) ReadByte() (byte, error) {
	// Like io.ReadFull, give up on a reader that keeps returning nothing.
	for range 100 {
		n, err := b.r.Read(b.buf[:])
		if n == 1 {
			return b.buf[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}
