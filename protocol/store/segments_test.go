package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/store"
)

// TestLargestChunkInSmallestSegments: a chunk of MaxChunkLength bytes in
// MinSegmentSize segments needs ceil(MaxChunkLength/MinSegmentSize) = 128
// hashes (the last segment short). The provider's pre-decode limit on the
// segment map admits them, so the chunk is stored and signed rather than
// its stream reset.
func TestLargestChunkInSmallestSegments(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(21, store.MaxChunkLength)
	res := e.spObjectData(t, 1, data, store.MaxChunkLength)
	if len(res.Chunks) != 1 {
		t.Fatalf("%d chunks, want 1", len(res.Chunks))
	}
	s := e.open(t, store.WithSegmentSize(store.MinSegmentSize))
	rc, err := s.Push(ctx, spPush(t, res, data, 1, 0))
	if err != nil {
		t.Fatalf("push of a %d-byte chunk in %d-byte segments: %v", store.MaxChunkLength, store.MinSegmentSize, err)
	}
	if !bytes.Equal(rc.GetCid(), res.Chunks[0].CID.Bytes()) {
		t.Fatalf("receipt names %x, want %s", rc.GetCid(), res.Chunks[0].CID)
	}
	if ok, err := e.bs.Has(res.Chunks[0].CID); err != nil || !ok {
		t.Fatalf("provider holds the chunk: %v, %v", ok, err)
	}
}
