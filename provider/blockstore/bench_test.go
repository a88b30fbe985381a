package blockstore

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
)

// BenchmarkPut stores 1 MiB blocks durably from 4 goroutines, plain and in
// an upload session (the store handler's path), and from 16 in a session
// (the store handler takes up to 64 chunks in flight: more writers share
// each flush of the pack and the index), and reports beside MB/s
// the disk's ceiling measured in the same run (the same bytes written to
// one file in 1 MiB direct writes and fdatasynced once: what no store on
// this disk can beat), the ratio to it, and the CPU seconds per GiB stored.
// SATCHEL_BENCH_DIR puts the stores elsewhere (a tmpfs takes the disk out).
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name    string
		session bool
		writers int
	}{{"plain", false, 4}, {"session", true, 4}, {"session-16w", true, 16}} {
		session := bc.session
		b.Run(bc.name, func(b *testing.B) {
			dir := benchutil.Dir(b)
			s, err := Open(filepath.Join(dir, "store"), WithSessionExpiry(0), WithLogger(discard))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 64
			blocks := make([][]byte, n)
			for i := range blocks {
				blocks[i] = randBytes(uint64(i)+1000*uint64(b.N), 1<<20)
			}
			sess := Session{ID: []byte("bench"), Bag: "b", Expiry: time.Now().Add(time.Hour)}
			var elapsed, ceiling time.Duration
			var cpu float64
			b.SetBytes(n << 20)
			b.ResetTimer()
			cids := make([]cid.Cid, n)
			for it := range b.N {
				b.StopTimer()
				// New blocks each round, hashed outside the measurement:
				// the CPU figure is the store's own.
				for i, d := range blocks {
					d[0] = byte(it)
					cids[i] = chunker.ChunkCID(d)
				}
				ceiling += rawDiskWrite(b, dir, blocks)
				b.StartTimer()
				start, cpu0 := time.Now(), benchutil.CPUSeconds()
				putAll(b, s, cids, blocks, bc.writers, session, sess)
				elapsed += time.Since(start)
				cpu += benchutil.CPUSeconds() - cpu0
			}
			gib := float64(b.N) * n / 1024
			mbs := float64(b.N) * n * (1 << 20) / 1e6
			b.ReportMetric(mbs/ceiling.Seconds(), "disk-MB/s")
			b.ReportMetric(ceiling.Seconds()/elapsed.Seconds(), "ratio-to-disk")
			b.ReportMetric(cpu/gib, "CPU-s/GiB")
		})
	}
}

// putAll stores blocks, whose CIDs are cids, from writers goroutines.
func putAll(b *testing.B, s *Store, cids []cid.Cid, blocks [][]byte, writers int, session bool, sess Session) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, d := cids[i], blocks[i]
				var err error
				if session {
					err = s.PutInSession(sess, c, d)
				} else {
					err = s.Put(c, d)
				}
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range blocks {
		work <- i
	}
	close(work)
	wg.Wait()
}

// rawDiskWrite writes blocks to a new file in dir in 1 MiB direct writes
// (buffered where the file system refuses direct I/O), fdatasyncs it once,
// removes it and returns how long the writes and the sync took.
func rawDiskWrite(b *testing.B, dir string, blocks [][]byte) time.Duration {
	path := filepath.Join(dir, "ceiling")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|oDirect, 0o644)
	if err != nil {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	buf := alignedAlloc(1 << 20)
	start := time.Now()
	for i, d := range blocks {
		copy(buf, d)
		if _, err := f.WriteAt(buf, int64(i)<<20); err != nil {
			b.Fatal(err)
		}
	}
	if err := fdatasync(f); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
