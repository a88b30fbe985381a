package p2p_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/p2p"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// plainReader hides any io.ByteReader of the reader it wraps, so ReadMsg takes
// its one-byte-at-a-time path, which must not read past a frame.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

func TestFrameRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("satchel!"), 40<<10) // 320 KiB: the grow-as-it-arrives path
	msgs := []proto.Message{
		wrapperspb.String("hello"),
		&wrapperspb.StringValue{}, // empty body: a zero-length frame
		wrapperspb.Bytes(big),
		wrapperspb.UInt64(1 << 60),
	}
	for _, name := range []string{"byte reader", "plain reader"} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			for _, m := range msgs {
				if err := p2p.WriteMsg(&buf, m); err != nil {
					t.Fatalf("WriteMsg: %v", err)
				}
			}
			var r io.Reader = &buf
			if name == "plain reader" {
				r = plainReader{&buf}
			}
			for i, want := range msgs {
				got := want.ProtoReflect().New().Interface()
				if err := p2p.ReadMsg(r, got, 0); err != nil {
					t.Fatalf("ReadMsg %d: %v", i, err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("frame %d: got %v, want %v", i, got, want)
				}
			}
			if err := p2p.ReadMsg(r, &wrapperspb.StringValue{}, 0); err != io.EOF {
				t.Fatalf("ReadMsg after the last frame = %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameLimit(t *testing.T) {
	body := strings.Repeat("x", 1000)
	var buf bytes.Buffer
	if err := p2p.WriteMsg(&buf, wrapperspb.String(body)); err != nil {
		t.Fatal(err)
	}
	size := proto.Size(wrapperspb.String(body))
	frame := buf.Bytes()

	var got wrapperspb.StringValue
	if err := p2p.ReadMsg(bytes.NewReader(frame), &got, size); err != nil || got.Value != body {
		t.Fatalf("frame of exactly the limit: err %v", err)
	}
	err := p2p.ReadMsg(bytes.NewReader(frame), &got, size-1)
	if !errors.Is(err, p2p.ErrFrameTooLarge) {
		t.Fatalf("frame one byte over the limit: err %v, want ErrFrameTooLarge", err)
	}
}

// A frame announcing 4 GiB must be refused from its prefix alone, without
// allocating for its body. A reader that allocated first would show gigabytes
// in TotalAlloc (the make may even succeed, the pages being untouched).
func TestFrameTooLargeRefusedBeforeAllocation(t *testing.T) {
	prefix := binary.AppendUvarint(nil, 4<<30)
	read := func() error {
		return p2p.ReadMsg(bytes.NewReader(prefix), &wrapperspb.BytesValue{}, p2p.DefaultMaxFrame)
	}
	if err := read(); !errors.Is(err, p2p.ErrFrameTooLarge) {
		t.Fatalf("ReadMsg = %v, want ErrFrameTooLarge", err)
	}

	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(runs, func() { _ = read() })
	runtime.ReadMemStats(&after)
	// AllocsPerRun makes runs+1 calls. Only the reader and the error allocate.
	perCall := float64(after.TotalAlloc-before.TotalAlloc) / (runs + 1)
	if perCall > 1024 {
		t.Errorf("refusing an oversize frame allocated %.0f bytes per call, want < 1 KiB", perCall)
	}
	if allocs > 8 {
		t.Errorf("refusing an oversize frame made %.0f allocations per call, want a handful", allocs)
	}

	// The same holds for a frame a little over the default limit, which a
	// reader could plausibly allocate.
	var heap runtime.MemStats
	runtime.ReadMemStats(&before)
	err := p2p.ReadMsg(bytes.NewReader(binary.AppendUvarint(nil, p2p.DefaultMaxFrame+1)), &wrapperspb.BytesValue{}, 0)
	runtime.ReadMemStats(&heap)
	if !errors.Is(err, p2p.ErrFrameTooLarge) {
		t.Fatalf("DefaultMaxFrame+1: err %v, want ErrFrameTooLarge", err)
	}
	if d := heap.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Errorf("refusing a DefaultMaxFrame+1 frame allocated %d bytes", d)
	}
}

func TestFrameTruncated(t *testing.T) {
	whole := func(m proto.Message) []byte {
		var b bytes.Buffer
		if err := p2p.WriteMsg(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	small := whole(wrapperspb.String("hello, satchel"))
	large := whole(wrapperspb.Bytes(make([]byte, 200<<10)))
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"body cut short", small[:len(small)-3], io.ErrUnexpectedEOF},
		{"large body cut short", large[:len(large)-1], io.ErrUnexpectedEOF},
		{"prefix only", small[:1], io.ErrUnexpectedEOF},
		{"prefix cut inside its varint", large[:1], io.ErrUnexpectedEOF},
		{"empty stream", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.input), plainReader{bytes.NewReader(tt.input)}} {
				err := p2p.ReadMsg(r, &wrapperspb.BytesValue{}, 0)
				if !errors.Is(err, tt.want) {
					t.Fatalf("ReadMsg(%T) = %v, want %v", r, err, tt.want)
				}
				if tt.want == io.ErrUnexpectedEOF && errors.Is(err, io.EOF) {
					t.Fatalf("a truncated frame must not look like a clean end: %v", err)
				}
			}
		})
	}
}

func TestFrameMalformed(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
	}{
		{"varint over 64 bits", bytes.Repeat([]byte{0xff}, 11)},
		{"body not protobuf", append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p2p.ReadMsg(bytes.NewReader(tt.input), &wrapperspb.StringValue{}, 0)
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, p2p.ErrFrameTooLarge) {
				t.Fatalf("ReadMsg = %v, want a malformed-frame error", err)
			}
		})
	}
}
