package p2p_test

import (
	"bytes"
	"testing"

	"github.com/satchel-net/satchel/p2p"
)

// TestRecycledFramesHoldOnlyTheirOwnBytes reads large frames whole, hands
// each back, and checks that every later frame (shorter, longer, of another
// size class) reads back exactly its own bytes: a reused buffer never shows
// a byte of the frame it held before, nor its length.
func TestRecycledFramesHoldOnlyTheirOwnBytes(t *testing.T) {
	sizes := []int{1<<20 + 17, 1<<20 - 3, 70 << 10, 1<<20 + 17, 3 << 20, 64 << 10, 1 << 20}
	var wire bytes.Buffer
	fw := p2p.NewFrameWriter(&wire)
	var want [][]byte
	for i, n := range sizes {
		b := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, b)
		if err := fw.WriteFrame(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	fr := p2p.NewFrameReader(&wire, 4<<20).WholeFrames()
	for i := range sizes {
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want[i]) {
			t.Fatalf("frame %d: %d bytes read back wrong (want %d bytes of %d)", i, len(body), len(want[i]), i+1)
		}
		p2p.RecycleFrame(body)
		if i%2 == 0 {
			p2p.RecycleFrame(body[1:]) // a sub-slice is not the body: ignored
		}
	}
}

// TestRecycleFrameIgnoresForeignBuffers hands back buffers no reader
// returned (odd capacities, tiny, huge, nil): nothing breaks, and frames
// read afterwards are intact.
func TestRecycleFrameIgnoresForeignBuffers(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 10), make([]byte, 100<<10), make([]byte, 0, 64<<20)} {
		p2p.RecycleFrame(b)
	}
	payload := bytes.Repeat([]byte{7}, 200<<10)
	var wire bytes.Buffer
	fw := p2p.NewFrameWriter(&wire)
	if err := fw.WriteFrame(payload); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	body, err := p2p.NewFrameReader(&wire, 0).WholeFrames().ReadFrame()
	if err != nil || !bytes.Equal(body, payload) {
		t.Fatalf("frame after foreign recycles: err %v, %d bytes", err, len(body))
	}
}
