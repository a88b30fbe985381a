package blockstore

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// BenchmarkOpenUnclean measures Open of a store of 200,000 blocks after an
// unclean stop, its pack unsealed (the scan skips every record the index
// names), against a clean Open of the same store in the same run (one walk
// of the index, no reconciling): the ceiling, since an unclean Open walks
// the index once too. The index is more than goleveldb's block cache, as a
// real store's is. The blocks' entries name 4 KiB records of a sparse
// pack, written straight to the index: Open reads no record it indexes,
// and the fixture takes a second, not the gigabytes of real records.
//   - unclean_ms/10k-blocks and clean_ms/10k-blocks are the two Opens'
//     wall times, and the _cpu_ms ones their CPU times (the process's,
//     steadier than wall times on a machine other work loads);
//   - ratio_vs_clean is the unclean wall time over the clean one.
func BenchmarkOpenUnclean(b *testing.B) {
	const n = 200_000
	dir := filepath.Join(benchutil.Dir(b), "store")
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	const recLen = 2 * ioAlign // a 4 KiB block's record
	var batch leveldb.Batch
	for i := range n {
		c := chunker.ChunkCID(binary.BigEndian.AppendUint64(nil, uint64(i)))
		rec := blockRecord{size: ioAlign, storedAt: time.Now(), packed: true, pack: 1, off: int64(i) * recLen}
		batch.Put(blockKey(c), rec.encode())
		if batch.Len() == 10_000 {
			if err := s.writeIndex(&batch, false); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	crash(b, s)
	if err := os.Truncate(s.packs.path(1), 0); err == nil || !os.IsNotExist(err) {
		b.Fatalf("pack 1 exists before the fixture makes it (%v)", err)
	}
	f, err := os.Create(s.packs.path(1))
	if err == nil {
		err = f.Truncate(n * recLen) // sparse
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}

	open := func() (*Store, time.Duration, float64) {
		start, cpu0 := time.Now(), benchutil.CPUSeconds()
		s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
		if err != nil {
			b.Fatal(err)
		}
		took, cpu := time.Since(start), benchutil.CPUSeconds()-cpu0
		if st := s.Stats(); st.Blocks != n {
			b.Fatalf("Open counted %d blocks, want %d", st.Blocks, n)
		}
		return s, took, cpu
	}
	// Once untimed: the first Open reconciles the fixture and compacts the
	// index's journal.
	s, _, _ = open()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var unclean, clean time.Duration
	var uncleanCPU, cleanCPU float64
	b.ResetTimer()
	for range b.N {
		s, took, cpu := open()
		clean += took
		cleanCPU += cpu
		// Unseal every pack, then stop as a crash does: the next Open
		// reconciles and scans them.
		for _, pn := range s.packs.numbers() {
			if err := s.db.Delete(packKey(pn), nil); err != nil {
				b.Fatal(err)
			}
		}
		crash(b, s)
		s, took, cpu = open()
		unclean += took
		uncleanCPU += cpu
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	per := func(sec float64) float64 { return sec * 1000 / float64(b.N) * 10_000 / n }
	b.ReportMetric(per(unclean.Seconds()), "unclean_ms/10k-blocks")
	b.ReportMetric(per(clean.Seconds()), "clean_ms/10k-blocks")
	b.ReportMetric(per(uncleanCPU), "unclean_cpu_ms/10k-blocks")
	b.ReportMetric(per(cleanCPU), "clean_cpu_ms/10k-blocks")
	b.ReportMetric(unclean.Seconds()/clean.Seconds(), "ratio_vs_clean")
}
