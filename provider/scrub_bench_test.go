package provider

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// BenchmarkScrub runs full scrub passes, unthrottled, over 256 MiB of
// 1 MiB blocks in a real block store and reports the scrub's rate as a
// ratio to reading the same pack files raw (os.ReadFile, no hashing) in
// the same run. The store reads through the page cache here (direct I/O
// off) like the raw reads, so scrub/raw is what verifying costs on top of
// reading; put SATCHEL_BENCH_DIR on the disk to measure.
func BenchmarkScrub(b *testing.B) {
	const block, total = 1 << 20, 256 << 20
	dir := benchutil.Dir(b)
	bs, err := blockstore.Open(dir, blockstore.WithDirectIO(false), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	var cids []cid.Cid
	for i := range total / block {
		d := benchutil.Rand(uint64(i), block)
		c := chunker.ChunkCID(d)
		if err := bs.Put(c, d); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, c)
	}
	s := &Server{bs: bs, scrub: newScrubber(scrubConfig{}), am: newAuditMetrics(), repairs: newRepairQueue(),
		log: slog.New(slog.DiscardHandler)}
	lim := rate.NewLimiter(rate.Inf, 0)
	ctx := context.Background()
	var scrubbed, rawTook time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := s.scrubPass(ctx, lim); err != nil {
			b.Fatal(err)
		}
		scrubbed += time.Since(start)
		start = time.Now()
		n := 0
		err := filepath.WalkDir(filepath.Join(dir, "packs"), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			n += len(data)
			return err
		})
		if err != nil || n < total {
			b.Fatalf("raw read %d bytes: %v", n, err)
		}
		rawTook += time.Since(start)
	}
	b.StopTimer()
	if st := s.scrubStatus(); st.Failed != 0 || st.Checked != uint64(b.N*len(cids)) {
		b.Fatalf("scrub status %+v", st)
	}
	b.ReportMetric(float64(total)*float64(b.N)/scrubbed.Seconds()/1e6, "scrub_MB/s")
	b.ReportMetric(rawTook.Seconds()/scrubbed.Seconds(), "scrub/raw")
}
