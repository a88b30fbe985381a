package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// readFrame reads frames larger than its preallocation whole, into a
// buffer no larger than the frame, and reports a truncated one.
func TestReadFrameBody(t *testing.T) {
	for _, n := range []int{0, 10, preallocLimit, preallocLimit + 1, 3*preallocLimit + 7, DefaultMaxFrame} {
		body := bytes.Repeat([]byte{0xab}, n)
		frame := append(binary.AppendUvarint(nil, uint64(n)), body...)
		got, _, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), DefaultMaxFrame)
		if err != nil || !bytes.Equal(got, body) || cap(got) > n {
			t.Fatalf("%d-byte frame: %d bytes (cap %d), %v", n, len(got), cap(got), err)
		}
	}
	// A peer announcing a large frame and sending a little of it.
	frame := append(binary.AppendUvarint(nil, DefaultMaxFrame), make([]byte, 100)...)
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), DefaultMaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}
