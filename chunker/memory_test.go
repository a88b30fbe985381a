package chunker_test

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/satchel-net/satchel/chunker"
)

// TestMemoryIsConstant chunks a 64 MiB stream and checks that everything
// allocated meanwhile, peak or not, stays far below the stream's size:
// buffers are recycled, so 2×workers chunk buffers are allocated in all.
// Any implementation that holds (or re-allocates) every chunk allocates at
// least 64 MiB and fails.
func TestMemoryIsConstant(t *testing.T) {
	const (
		size    = 64 << 20
		workers = 2
		bound   = 16 << 20 // 2×2 1 MiB buffers, plus ample slack
	)
	for _, how := range []string{"Sum", "Next"} {
		t.Run(how, func(t *testing.T) {
			src := stream(size)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)

			chunks := 0
			var total int64
			switch how {
			case "Sum":
				res, err := chunker.Sum(context.Background(), src, chunker.WithWorkers(workers),
					chunker.WithChunkFunc(func(c chunker.Chunk) error {
						chunks++
						return nil
					}))
				if err != nil {
					t.Fatal(err)
				}
				total = res.Size
			case "Next":
				c, err := chunker.New(src, chunker.WithWorkers(workers))
				if err != nil {
					t.Fatal(err)
				}
				for {
					ch, err := c.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					chunks++
					total += int64(len(ch.Data))
				}
			}

			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d chunks of a %d MiB stream allocated %.1f MiB", how, chunks, size>>20, float64(allocated)/(1<<20))
			if chunks != size/chunker.DefaultChunkSize || total != size {
				t.Fatalf("%d chunks, %d bytes; want %d, %d", chunks, total, size/chunker.DefaultChunkSize, size)
			}
			if allocated > bound {
				t.Errorf("allocated %d MiB to chunk %d MiB; want under %d MiB whatever the stream's size",
					allocated>>20, size>>20, bound>>20)
			}
		})
	}
}

// TestMemoryDoesNotGrowWithChunks chunks 20,000 chunks of 64 bytes and
// measures the live heap, after a GC, at chunk 1,000 and at the last chunk,
// while Sum is still running. Without the chunk list and the nodes nothing
// may grow with the chunk count: one partly filled node per level is all
// the DAG holds. Kept (the default), the same measure sees the list and
// nodes grow by over 100 bytes a chunk, which shows the measure works.
func TestMemoryDoesNotGrowWithChunks(t *testing.T) {
	const (
		chunkSize = 64
		chunks    = 20000
		first     = 1000
		bound     = 64 << 10 // ≈3 bytes a chunk; keeping anything per chunk costs 50+
	)
	for _, c := range []struct {
		name string
		opts []chunker.Option
		grow bool
	}{
		{"kept", nil, true},
		{"dropped", []chunker.Option{chunker.WithChunkList(false), chunker.WithNodes(false)}, false},
		{"streamed", []chunker.Option{chunker.WithChunkList(false), chunker.WithNodes(false),
			chunker.WithNodeFunc(func(chunker.Block) error { return nil })}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var start, end runtime.MemStats
			opts := append([]chunker.Option{chunker.WithChunkSize(chunkSize), chunker.WithWorkers(1),
				chunker.WithChunkFunc(func(ch chunker.Chunk) error {
					switch ch.Index {
					case first:
						runtime.GC()
						runtime.ReadMemStats(&start)
					case chunks - 1:
						runtime.GC()
						runtime.ReadMemStats(&end)
					}
					return nil
				})}, c.opts...)
			res, err := chunker.Sum(context.Background(), stream(chunks*chunkSize), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if res.NumChunks != chunks {
				t.Fatalf("%d chunks, want %d", res.NumChunks, chunks)
			}
			growth := int64(end.HeapAlloc) - int64(start.HeapAlloc)
			perChunk := float64(growth) / (chunks - 1 - first)
			t.Logf("%s: live heap grew %d bytes over %d chunks (%.1f bytes a chunk); allocated %.0f bytes a chunk",
				c.name, growth, chunks-1-first, perChunk, float64(end.TotalAlloc-start.TotalAlloc)/(chunks-1-first))
			switch {
			case c.grow && growth < 1<<20:
				t.Errorf("with the lists kept the live heap grew only %d bytes; the measure is broken", growth)
			case !c.grow && growth > bound:
				t.Errorf("live heap grew %d bytes (%.1f a chunk) over %d chunks; want under %d whatever the count",
					growth, perChunk, chunks-1-first, bound)
			}
		})
	}
}
