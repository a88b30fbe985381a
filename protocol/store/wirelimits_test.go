package store

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// floodFrame is one length-prefixed frame (of id 7) whose field body holds
// an inner message of count elements of field sub, each of elem.
func floodFrame(body, sub protowire.Number, count int, elem []byte) []byte {
	var inner []byte
	for range count {
		inner = protowire.AppendTag(inner, sub, protowire.BytesType)
		inner = protowire.AppendBytes(inner, elem)
	}
	return frameOf(repeated(body, 1, inner))
}

// repeated encodes field num count times, each holding elem.
func repeated(num protowire.Number, count int, elem []byte) []byte {
	var b []byte
	for range count {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, elem)
	}
	return b
}

// frameOf prefixes an id (7) to fields and frames them.
func frameOf(fields []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	return protowire.AppendBytes(nil, append(b, fields...))
}

// allocated returns the bytes allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFloodFramesRefusedBeforeDecoding: a frame of the largest size whose
// repeated fields hold millions of empty elements (forward hops, BIND chunk
// references, segment hashes; replies of relayed receipts) would decode
// into tens of times its size before any count is checked. The handler's
// and the caller's readers refuse each before decoding, allocating about
// the frame itself; the same lists within the limits decode.
func TestFloodFramesRefusedBeforeDecoding(t *testing.T) {
	n := (MaxFrame - 64) / 2
	for name, frame := range map[string][]byte{
		"forward hops":      floodFrame(2, 9, n, nil),
		"hop addresses":     floodFrame(2, 9, 1, repeated(2, n/2, nil)),
		"proof blocks":      floodFrame(2, 7, n, nil),
		"bind chunks":       floodFrame(6, 4, n, nil),
		"short bind chunks": floodFrame(6, 4, MaxBindChunks, []byte{1}),
		"segment hashes":    floodFrame(3, 2, n, nil),
		// Request bodies repeated in one frame: protobuf would merge
		// them, concatenating their forward lists.
		"bodies merged": frameOf(repeated(2, n/4, repeated(9, 1, nil))),
	} {
		var err error
		alloc := allocated(func() {
			fr := p2p.NewFrameReader(bytes.NewReader(frame), MaxFrame).LimitElements(requestLimits)
			var req pb.StoreRequest
			_, err = readStoreFrame(fr, &req)
		})
		if !errors.Is(err, ErrProtocol) || !errors.Is(err, p2p.ErrTooManyElements) {
			t.Errorf("%s: %v; want a protocol error naming too many elements", name, err)
		}
		if alloc > 2*uint64(len(frame))+1<<20 {
			t.Errorf("%s: %d bytes allocated for a frame of %d", name, alloc, len(frame))
		}
	}

	// A reply of millions of empty relayed receipts, as a lying provider
	// would send, on the caller's reader.
	reply := frameOf(repeated(5, (MaxReplyFrame-16)/2, nil))
	fr := p2p.NewFrameReader(bytes.NewReader(reply), MaxReplyFrame).LimitElements(replyLimits)
	var r pb.StoreReply
	if err := fr.ReadMsg(&r); !errors.Is(err, p2p.ErrTooManyElements) {
		t.Errorf("a reply of %d empty relayed receipts: %v", (MaxReplyFrame-16)/2, err)
	}

	// Within the limits: a forward list and a proof at their maximum, and
	// a BIND of chunk references that carry a CID.
	hop := protowire.AppendTag(nil, 1, protowire.BytesType)
	hop = protowire.AppendBytes(hop, make([]byte, 38))
	ref := protowire.AppendTag(nil, 1, protowire.BytesType)
	ref = protowire.AppendBytes(ref, make([]byte, 36))
	for name, frame := range map[string][]byte{
		"forward hops": floodFrame(2, 9, MaxForwardHops, hop),
		"proof blocks": floodFrame(2, 7, MaxProofBlocks, make([]byte, 100)),
		"bind chunks":  floodFrame(6, 4, 1000, ref),
	} {
		fr := p2p.NewFrameReader(bytes.NewReader(frame), MaxFrame).LimitElements(requestLimits)
		var req pb.StoreRequest
		if _, err := readStoreFrame(fr, &req); err != nil {
			t.Errorf("%s within the limits: %v", name, err)
		}
	}
}
