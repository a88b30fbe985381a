package fetch

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// allocated returns the bytes the process allocated while fn ran, per
// run, over runs runs (after one warm-up run).
func allocated(runs int, fn func()) float64 {
	fn()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// haveFrame is a FetchRequest frame (with its length prefix) of a HAVE of
// n CIDs of cidLen bytes.
func haveFrame(n, cidLen int) []byte {
	var inner []byte
	for range n {
		inner = protowire.AppendTag(inner, 1, protowire.BytesType)
		inner = protowire.AppendBytes(inner, make([]byte, cidLen))
	}
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.VarintType)
	body = protowire.AppendVarint(body, 1)
	body = protowire.AppendTag(body, 2, protowire.BytesType)
	body = protowire.AppendBytes(body, inner)
	return protowire.AppendBytes(nil, body)
}

// Reading a crafted request frame allocates no more than twice what the
// reader may be sent in one frame: a flood of empty CIDs within the frame
// limit is refused before decoding (and allocates next to nothing), and
// the largest HAVE that decodes — MaxHaveCIDs empty CIDs, the worst
// ratio of decoded to wire size — stays under 2 × MaxRequestFrame.
func TestReadRequestAllocation(t *testing.T) {
	cases := []struct {
		name    string
		frame   []byte
		refused bool
		ceiling float64
	}{
		{"flood within the frame limit", haveFrame((MaxRequestFrame-64)/2, 0), true, 0},
		{"MaxHaveCIDs empty CIDs", haveFrame(MaxHaveCIDs, 0), false, 2 * MaxRequestFrame},
		{"MaxHaveCIDs 36-byte CIDs", haveFrame(MaxHaveCIDs, 36), false, 2 * MaxRequestFrame},
	}
	for _, tc := range cases {
		if len(tc.frame) > MaxRequestFrame {
			t.Fatalf("%s: frame of %d bytes, over MaxRequestFrame", tc.name, len(tc.frame))
		}
		if tc.refused {
			tc.ceiling = 2 * float64(len(tc.frame))
		}
		const runs = 20
		in := bytes.NewReader(bytes.Repeat(tc.frame, runs+1))
		fr := p2p.NewFrameReader(in, MaxRequestFrame)
		var err error
		per := allocated(runs, func() {
			var req pb.FetchRequest
			err = readRequest(fr, &req)
		})
		if tc.refused != (err != nil) {
			t.Fatalf("%s: readRequest = %v", tc.name, err)
		}
		if tc.refused && !errors.Is(err, ErrProtocol) {
			t.Fatalf("%s: readRequest = %v, want ErrProtocol", tc.name, err)
		}
		t.Logf("%s: %d-byte frame, %.0f bytes allocated per read", tc.name, len(tc.frame), per)
		if per > tc.ceiling {
			t.Fatalf("%s: %.0f bytes allocated per %d-byte frame, over %.0f", tc.name, per, len(tc.frame), tc.ceiling)
		}
	}
}

// A crafted reply — the most flags a frame can carry, packed or not — is
// refused before it is decoded, allocating under twice its size.
func TestReadFetchReplyAllocation(t *testing.T) {
	reply := func(flags []byte) []byte {
		body := []byte{0x08, 0x01, 0x10, 0x01} // id 1, OK
		return protowire.AppendBytes(nil, append(body, flags...))
	}
	unpacked := bytes.Repeat([]byte{0x20, 0x01}, (MaxFrame-64)/2)
	cases := map[string][]byte{
		"packed":   reply(protowire.AppendBytes([]byte{0x22}, make([]byte, MaxFrame-64))),
		"unpacked": reply(unpacked),
	}
	for name, frame := range cases {
		const runs = 3
		fr := p2p.NewFrameReader(bytes.NewReader(bytes.Repeat(frame, runs+1)), MaxFrame).WholeFrames() // as the client reads
		var err error
		per := allocated(runs, func() {
			var r pb.FetchReply
			_, err = readFetchReply(fr, &r)
		})
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("%s: readFetchReply = %v, want ErrProtocol", name, err)
		}
		t.Logf("%s: %d-byte frame, %.0f bytes allocated per read", name, len(frame), per)
		if per > 2*float64(len(frame)) {
			t.Fatalf("%s: %.0f bytes allocated per %d-byte frame, over twice its size", name, per, len(frame))
		}
	}
}
