package p2p_test

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/satchel-net/satchel/p2p"
)

// frames writes one frame per payload and returns a reader of them that
// reads each body whole (from the frame pool).
func frames(t *testing.T, payloads ...[]byte) *p2p.FrameReader {
	t.Helper()
	var wire bytes.Buffer
	fw := p2p.NewFrameWriter(&wire)
	for _, b := range payloads {
		if err := fw.WriteFrame(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return p2p.NewFrameReader(&wire, 4<<20).WholeFrames()
}

// overlap reports whether two slices' backing memory (to their capacity)
// intersects.
func overlap(a, b []byte) bool {
	a0, b0 := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(cap(b)) && b0 < a0+uintptr(cap(a))
}

// TestRecycledFramesHoldOnlyTheirOwnBytes reads large frames whole, keeps
// some live while others are handed back, and checks that every frame
// reads back exactly its own bytes and that no two live bodies share
// memory, whatever the sizes and size steps.
func TestRecycledFramesHoldOnlyTheirOwnBytes(t *testing.T) {
	sizes := []int{1<<20 + 17, 1<<20 - 3, 70 << 10, 1<<20 + 17, 3 << 20, 64 << 10, 1 << 20, 1<<20 + 5}
	var want [][]byte
	for i, n := range sizes {
		want = append(want, bytes.Repeat([]byte{byte(i + 1)}, n))
	}
	fr := frames(t, want...)
	var live [][]byte
	for i := range sizes {
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want[i]) {
			t.Fatalf("frame %d: %d bytes read back wrong (want %d bytes of %d)", i, len(body), len(want[i]), i+1)
		}
		for j, other := range live {
			if overlap(body, other) {
				t.Fatalf("frame %d shares memory with live frame %d", i, j)
			}
		}
		if i%2 == 0 {
			live = append(live, body) // kept: must not be handed out again
		} else {
			p2p.RecycleFrame(body)
		}
	}
	for j, b := range live {
		if !bytes.Equal(b, want[2*j]) {
			t.Fatalf("live frame %d changed after later frames were read", 2*j)
		}
	}
}

// TestRecycleFrameIgnoresSlicesOffTheStep hands back a body's sub-slice
// (a capacity off the pool's 64 KiB step) and buffers of other sizes: none
// is handed out again, so frames read afterwards never share memory with
// the body, which stays live.
func TestRecycleFrameIgnoresSlicesOffTheStep(t *testing.T) {
	// The later frames are a step smaller than the first, so they would
	// draw from the step its sub-slices fall in, were those kept.
	first, payload := bytes.Repeat([]byte{6}, 1<<20), bytes.Repeat([]byte{7}, 15<<16-100)
	fr := frames(t, first, payload, payload, payload)
	body, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	p2p.RecycleFrame(body[1:])
	p2p.RecycleFrame(body[: len(body)-3 : cap(body)-3])
	for _, b := range [][]byte{nil, make([]byte, 10), make([]byte, 100<<10), make([]byte, 0, 64<<20)} {
		p2p.RecycleFrame(b)
	}
	for i := range 3 {
		next, err := fr.ReadFrame()
		if err != nil || !bytes.Equal(next, payload) {
			t.Fatalf("frame %d after the foreign recycles: err %v, %d bytes", i+1, err, len(next))
		}
		if overlap(next, body) {
			t.Fatalf("frame %d reuses the memory of a live body a sub-slice of which was recycled", i+1)
		}
	}
}
