package blockstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
)

// BenchmarkOpenUnclean measures Open of a store of 10,000 blocks (4 KiB
// each, one pack) after an unclean stop, with its pack unsealed (the scan
// skips every record the index names), against a clean Open of the same
// store in the same run (one walk of the index, no reconciling): the
// ceiling, since an unclean Open walks the index once too.
//   - unclean_ms/10k-blocks and clean_ms/10k-blocks are the two Opens;
//   - ratio_vs_clean is the first over the second.
func BenchmarkOpenUnclean(b *testing.B) {
	const n = 10_000
	dir := filepath.Join(benchutil.Dir(b), "store")
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	blocks := make([][]byte, n)
	cids := make([]cid.Cid, n)
	for i := range blocks {
		blocks[i] = benchutil.Rand(uint64(i), 4<<10)
		cids[i] = chunker.ChunkCID(blocks[i])
	}
	putAll(b, s, cids, blocks, 64, false, Session{})
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	open := func() (*Store, time.Duration) {
		start := time.Now()
		s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if st := s.Stats(); st.Blocks != n {
			b.Fatalf("Open counted %d blocks, want %d", st.Blocks, n)
		}
		return s, took
	}
	// Once untimed: the first Open after the fixture's writes compacts
	// their journal.
	s, _ = open()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var unclean, clean time.Duration
	b.ResetTimer()
	for range b.N {
		s, took := open()
		clean += took
		// Unseal every pack, then stop as a crash does: the next Open
		// reconciles and scans them.
		for _, pn := range s.packs.numbers() {
			if err := s.db.Delete(packKey(pn), nil); err != nil {
				b.Fatal(err)
			}
		}
		crash(b, s)
		s, took = open()
		unclean += took
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) * 10_000 / n }
	b.ReportMetric(per(unclean), "unclean_ms/10k-blocks")
	b.ReportMetric(per(clean), "clean_ms/10k-blocks")
	b.ReportMetric(unclean.Seconds()/clean.Seconds(), "ratio_vs_clean")
}
