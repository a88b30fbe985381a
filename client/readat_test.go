package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/fetch"
)

// countingFetch counts the blocks read through it.
type countingFetch struct {
	blockFetcher
	mu    sync.Mutex
	reads map[cid.Cid]int
}

func (f *countingFetch) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error) {
	f.mu.Lock()
	f.reads[c]++
	f.mu.Unlock()
	return f.blockFetcher.ReadBlock(ctx, p, c)
}

// TestReadAtSequentialFetchesEachChunkOnce reads an object through
// io.SectionReader in 4 KiB and 32 KiB pieces: every chunk is fetched
// once per pass, not once per call.
func TestReadAtSequentialFetchesEachChunkOnce(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 1<<20+4321, 61) // 17 chunks of 64 KiB
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, piece := range []int{4 << 10, 32 << 10, 5000} {
		cf := &countingFetch{blockFetcher: c.fetch, reads: map[cid.Cid]int{}}
		c.fetch = cf
		r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := io.CopyBuffer(&out, io.NewSectionReader(r, 0, r.Size()), make([]byte, piece)); err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
		c.fetch = cf.blockFetcher
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%d-byte reads returned other bytes", piece)
		}
		leaves := 0
		for k, n := range cf.reads {
			if k.Type() != cid.Raw {
				continue
			}
			leaves++
			if n != 1 {
				t.Fatalf("%d-byte reads: chunk %s fetched %d times", piece, k, n)
			}
		}
		if leaves != 17 {
			t.Fatalf("%d-byte reads fetched %d chunks, want 17", piece, leaves)
		}
	}
}

// TestWriteRangeBoundByOpenContext cancels the context given to Open: a
// WriteRange with a live context of its own then fails with it.
func TestWriteRangeBoundByOpenContext(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 300<<10, 62)))
	if err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithCancel(ctx)
	r, err := c.Open(octx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cancel()
	if _, err := r.WriteRange(ctx, io.Discard, 0, r.Size()); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteRange after Open's context ended: %v", err)
	}
}
