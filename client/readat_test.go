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

	"github.com/satchel-net/satchel/chunker"
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
// WriteRange with a live context of its own then fails with it, whether
// the object's chunks are still to fetch or its only chunk, the root, is
// in hand (nothing to wait for that would notice the context ended).
func TestWriteRangeBoundByOpenContext(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	for _, size := range []int{300 << 10, 10 << 10} {
		obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, size, 62)))
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			octx, cancel := context.WithCancel(ctx)
			r, err := c.Open(octx, ObjectRef(net.bag, obj.ID))
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			n, err := r.WriteRange(ctx, io.Discard, 0, r.Size())
			_ = r.Close()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteRange of %d bytes after Open's context ended: %d bytes, %v", size, n, err)
			}
		}
	}
}

// failingFetch fails every read of one block.
type failingFetch struct {
	blockFetcher
	bad cid.Cid
}

func (f failingFetch) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error) {
	if c.Equals(f.bad) {
		return fetch.Block{}, errors.New("disk error")
	}
	return f.blockFetcher.ReadBlock(ctx, p, c)
}

// TestReadAtReadsAhead reads an object in order in 4 KiB pieces: after the
// first chunks, the reads wait for the network once per batch of chunks
// fetched together, not once per chunk. A chunk read ahead that cannot be
// fetched fails only the read that asks for its bytes.
func TestReadAtReadsAhead(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("", WithFetchWindow(4))
	ctx := testCtx(t)
	data := randomBytes(t, 1<<20+4321, 62) // 17 chunks of 64 KiB
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFetch{blockFetcher: c.fetch, reads: map[cid.Cid]int{}}
	c.fetch = cf
	fetched := func() int {
		cf.mu.Lock()
		defer cf.mu.Unlock()
		n := 0
		for k, m := range cf.reads {
			if k.Type() == cid.Raw {
				n += m
			}
		}
		return n
	}
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4<<10)
	waits := 0 // reads that fetched chunks
	for off := int64(0); off < r.Size(); off += int64(len(buf)) {
		before := fetched()
		n, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		out.Write(buf[:n])
		if fetched() > before {
			waits++
		}
	}
	_ = r.Close()
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("4 KiB reads returned other bytes")
	}
	// Chunk 1, 2 then batches of the fetch window (4 chunks): 2 + 4.
	if waits > 6 || fetched() != 17 {
		t.Fatalf("17 chunks read in order: %d reads waited for the network, %d chunks fetched; want at most 6 and 17", waits, fetched())
	}

	// Chunk 3 cannot be fetched. Reading chunk by chunk in order, the
	// read of chunk 1 reads chunks 2 to 5 ahead; it succeeds, and so does
	// the read of chunk 2; the read of chunk 3 fails.
	const chunk = 64 << 10
	r, err = c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c.fetch = failingFetch{blockFetcher: cf.blockFetcher, bad: chunker.ChunkCID(data[3*chunk : 4*chunk])}
	whole := make([]byte, chunk)
	for i := range int64(3) {
		if _, err := r.ReadAt(whole, i*chunk); err != nil || !bytes.Equal(whole, data[i*chunk:(i+1)*chunk]) {
			t.Fatalf("read of chunk %d, before the chunk that fails: %v", i, err)
		}
	}
	if _, err := r.ReadAt(whole, 3*chunk); err == nil {
		t.Fatal("read of the chunk that cannot be fetched succeeded")
	}
}
