package store

import (
	"crypto/sha256"
	"testing"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// A chunk's first partial frame charges the whole buffer it allocates to the
// stream's budget, so many large chunks each sent one small segment at a
// time cannot pin more than MaxStreamBuffered.
func TestPartialChunkChargesBuffer(t *testing.T) {
	const seg = MinSegmentSize
	const length = 2 << 20
	piece := make([]byte, seg)
	sum := sha256.Sum256(piece)
	hashes := make([][]byte, length/seg)
	for i := range hashes {
		hashes[i] = sum[:]
	}
	c := &storeConn{}
	for i := range MaxChunksInFlight {
		ex := &storeExchange{id: uint64(i), length: length, segSize: seg, hashes: hashes}
		if _, err := ex.take(&pb.StoreChunkData{Offset: 0, Data: piece}, nil); err != nil {
			t.Fatal(err)
		}
		over := c.bufferPartial(ex, cap(ex.buf))
		if ex.partial != length {
			t.Fatalf("exchange %d charged %d bytes, its buffer holds %d", i, ex.partial, cap(ex.buf))
		}
		if again := c.bufferPartial(ex, cap(ex.buf)); again != over || ex.partial != length {
			t.Fatal("a second frame charged the same buffer twice")
		}
		if over {
			if want := MaxStreamBuffered / length; i != want {
				t.Fatalf("over the budget at exchange %d, want %d", i, want)
			}
			return
		}
	}
	t.Fatalf("%d exchanges pinned %d bytes without going over %d", MaxChunksInFlight, c.partial, MaxStreamBuffered)
}
