package p2p

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	fetchpb "github.com/satchel-net/satchel/protocol/fetch/pb"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// fuzzMaxFrame is the frame limit FuzzReadMsg reads with: small, so the
// fuzzer reaches frames on both sides of it.
const fuzzMaxFrame = 256

// FuzzReadMsg feeds arbitrary bytes to ReadMsg, as a peer could, decoding
// into the store and fetch protocols' request messages through both the
// io.ByteReader path and the one-byte-at-a-time path. It checks that
// ReadMsg never panics, fails only with a frame-size, truncation, varint or
// decode error, never consumes bytes past the frame, and that a frame it
// accepts is exactly the length prefix and the body it announces and
// re-encodes to a frame that reads back as the same message.
//
// Seeds are in testdata/fuzz/FuzzReadMsg; run it with
//
//	go test ./p2p -run '^$' -fuzz '^FuzzReadMsg$' -fuzztime 1m
func FuzzReadMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range []func() proto.Message{
			func() proto.Message { return new(storepb.StoreRequest) },
			func() proto.Message { return new(fetchpb.FetchRequest) },
		} {
			m := newMsg()
			br := bytes.NewReader(data)
			n, err := readMsg(br, m, fuzzMaxFrame)
			if consumed := len(data) - br.Len(); consumed != n {
				t.Fatalf("readMsg reports %d bytes consumed, the reader gave %d", n, consumed)
			}

			// The plain path must consume and decide exactly the same.
			plain := bytes.NewReader(data)
			pm := newMsg()
			pn, perr := readMsg(plainOnly{plain}, pm, fuzzMaxFrame)
			if pn != n || (perr == nil) != (err == nil) || len(data)-plain.Len() != n {
				t.Fatalf("byte reader: %d bytes, %v; plain reader: %d bytes (%d read), %v",
					n, err, pn, len(data)-plain.Len(), perr)
			}

			if err != nil {
				checkReadError(t, data, n, err)
				continue
			}
			size, k := binary.Uvarint(data)
			if k <= 0 || size > fuzzMaxFrame || n != k+int(size) {
				t.Fatalf("accepted a frame of %d bytes whose prefix says %d+%d (limit %d)", n, k, size, fuzzMaxFrame)
			}
			if !proto.Equal(m, pm) {
				t.Fatalf("the two read paths decoded %v and %v", m, pm)
			}
			// Protobuf has many encodings of one message (field order,
			// repeated scalars, non-minimal varints), so the re-encoding is
			// compared as a message, not byte for byte.
			var buf bytes.Buffer
			w, err := writeMsg(&buf, m)
			if err != nil {
				t.Fatalf("re-encode %v: %v", m, err)
			}
			again := newMsg()
			r, err := readMsg(&buf, again, 0)
			if err != nil || r != w || buf.Len() != 0 || !proto.Equal(m, again) {
				t.Fatalf("re-encoded frame (%d bytes) reads back as %v after %d bytes (%v); want %v", w, again, r, err, m)
			}
		}
	})
}

// checkReadError checks that err is one of the errors ReadMsg documents
// for the n bytes of data it consumed.
func checkReadError(t *testing.T, data []byte, n int, err error) {
	t.Helper()
	switch {
	case err == io.EOF:
		if len(data) != 0 {
			t.Fatalf("io.EOF with %d bytes to read", len(data))
		}
	case errors.Is(err, ErrFrameTooLarge):
		if size, k := binary.Uvarint(data); k <= 0 || size <= fuzzMaxFrame || n != k {
			t.Fatalf("%v: prefix %d (%d bytes), consumed %d", err, size, k, n)
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		if n != len(data) {
			t.Fatalf("%v after %d of %d bytes", err, n, len(data))
		}
	case errors.Is(err, errVarintOverflow):
		if _, k := binary.Uvarint(data); k > 0 {
			t.Fatalf("%v, but the prefix decodes (%d bytes)", err, k)
		}
	case isDecodeError(err):
		if size, k := binary.Uvarint(data); k <= 0 || n != k+int(size) {
			t.Fatalf("%v after %d bytes; the frame is %d+%d", err, n, k, size)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// plainOnly hides the io.ByteReader of r.
type plainOnly struct{ r io.Reader }

func (p plainOnly) Read(b []byte) (int, error) { return p.r.Read(b) }
