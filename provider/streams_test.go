package provider

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// readFrameBody reads frames larger than its preallocation whole, into a
// buffer no larger than the frame, and reports a truncated one.
func TestReadFrameBody(t *testing.T) {
	for _, n := range []int{0, 10, framePrealloc, framePrealloc + 1, 3*framePrealloc + 7, MaxFrame} {
		body := bytes.Repeat([]byte{0xab}, n)
		frame := append(binary.AppendUvarint(nil, uint64(n)), body...)
		got, err := readFrameBody(bufio.NewReader(bytes.NewReader(frame)))
		if err != nil || !bytes.Equal(got, body) || cap(got) > n {
			t.Fatalf("%d-byte frame: %d bytes (cap %d), %v", n, len(got), cap(got), err)
		}
	}
	// A peer announcing a large frame and sending a little of it.
	frame := append(binary.AppendUvarint(nil, MaxFrame), make([]byte, 100)...)
	if _, err := readFrameBody(bufio.NewReader(bytes.NewReader(frame))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}
