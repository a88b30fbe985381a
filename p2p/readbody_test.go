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

// A FrameReader with WholeFrames reads a large frame into one buffer of its
// announced length (one allocation, no growing), still refuses a frame
// over its limit before allocating, and reports a truncated one.
func TestWholeFrames(t *testing.T) {
	n := 1 << 20
	body := bytes.Repeat([]byte{0xcd}, n)
	frame := append(binary.AppendUvarint(nil, uint64(n)), body...)
	var got []byte
	var err error
	read := func(whole bool) float64 {
		return testing.AllocsPerRun(5, func() {
			fr := NewFrameReader(bytes.NewReader(frame), DefaultMaxFrame)
			if whole {
				fr.WholeFrames()
			}
			got, err = fr.ReadFrame()
		})
	}
	grown, whole := read(false), read(true)
	if err != nil || !bytes.Equal(got, body) || cap(got) != n {
		t.Fatalf("frame of %d bytes: got %d (cap %d), %v", n, len(got), cap(got), err)
	}
	// Grown as it arrives, a 1 MiB body takes three buffers (64 KiB,
	// 256 KiB, 1 MiB); whole, one.
	if grown-whole != 2 {
		t.Fatalf("%v allocations to read a frame whole, %v grown; want two fewer", whole, grown)
	}
	over := binary.AppendUvarint(nil, uint64(n+1))
	if _, err := NewFrameReader(bytes.NewReader(over), n).WholeFrames().ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame over the limit: %v", err)
	}
	if _, err := NewFrameReader(bytes.NewReader(frame[:n/2]), DefaultMaxFrame).WholeFrames().ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}
