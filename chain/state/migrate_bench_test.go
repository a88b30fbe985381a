package state

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// migrateBench1MEnv, when set, adds a state of 1,000,000 objects to
// BenchmarkMigrateObjectIndex (it takes minutes to build).
const migrateBench1MEnv = "SATCHEL_BENCH_MIGRATE_1M"

// BenchmarkMigrateObjectIndex measures the upgrade to VersionObjectIndex
// on a version 2 state of 10,000 and 100,000 objects on disk (and
// 1,000,000 with SATCHEL_BENCH_MIGRATE_1M=1). For the migration alone,
// over the committed state as the upgrade block sees it, and for each of
// the reference that loads every record (indexObjectIDsLoadingAll) and
// the streaming one (indexObjectIDs): its time (mig_*_ms, at the default
// GC percent) and the peak heap above the heap before it
// (mig_*_peak_MiB, sampled every millisecond at GC percent 5, so it is
// about what the migration holds live), per object (mig_*_B_per_obj), and
// the streaming one's peak as a fraction of the reference's
// (mig_new_of_old). Then the whole upgrade block with the streaming
// migration — the migration, its writes put into the tree and hashed
// (block_ms: FinalizeBlock), and, for the memory, saved (Commit):
// block_peak_MiB, block_B_per_obj; and the peak of FinalizeBlock alone
// under each migration (block_old_nocommit_peak_MiB,
// block_new_nocommit_peak_MiB). The read tree's node cache is warmed by
// a walk of the objects first. The state is
// written straight into the tree in blocks of 50,000 objects, like
// BenchmarkAppHashGrowth's.
func BenchmarkMigrateObjectIndex(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv(migrateBench1MEnv) != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("objects=%dk", n/1000), func(b *testing.B) { benchMigrate(b, n) })
	}
}

func benchMigrate(b *testing.B, n int) {
	m, bag := benchMachineAt(b, VersionMerkle)
	fillObjects(b, m, bag, 1, n, 50_000)
	if v, err := m.AppVersion(); err != nil || v != VersionMerkle {
		b.Fatalf("state built at version %d, %v; want %d", v, err, VersionMerkle)
	}
	// One walk first, so the read tree's node cache is as full for the
	// first migration measured as for the next.
	if err := m.reader().(iterator).iterate(keyObject, func(string, []byte) error { return nil }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	peaks := map[string]float64{}
	for range b.N {
		for _, mig := range []struct {
			name string
			run  func(*cache) error
		}{{"old", indexObjectIDsLoadingAll}, {"new", indexObjectIDs}} {
			// As runUpgrade runs it: a cache over the block's cache over
			// the committed state. Timed at the default GC percent, then
			// measured at a low one.
			run := func() {
				c := newCache(newCache(&faultReader{parent: m.reader()}))
				if err := mig.run(c); err != nil {
					b.Fatal(err)
				}
				if got := len(c.writes); got != n+1 {
					b.Fatalf("%s migration wrote %d keys for %d objects", mig.name, got, n)
				}
			}
			d, _ := measurePeak(100, run)
			_, peak := measurePeak(lowGCPercent, run)
			peaks[mig.name] = peak
			b.ReportMetric(float64(d.Microseconds())/1000, "mig_"+mig.name+"_ms")
			b.ReportMetric(peak/(1<<20), "mig_"+mig.name+"_peak_MiB")
			b.ReportMetric(peak/float64(n), "mig_"+mig.name+"_B_per_obj")
		}
	}
	b.ReportMetric(peaks["new"]/peaks["old"], "mig_new_of_old")

	// The whole upgrade block. A state moves to version 3 once, but a
	// block finalized and not committed can be finalized again: timed
	// once; measured without its commit under each migration; then
	// measured with its commit under the walking one.
	at := scheduleUpgrade(b, m)
	info := chain.BlockInfo{Height: at, Time: genesisTime.Add(time.Hour), Hash: defaultHash(at)}
	finalize := func() {
		if _, _, err := m.FinalizeBlock(info, nil); err != nil {
			b.Fatal(err)
		}
	}
	// drop drops the finalized block, so the next heap measured from
	// holds none of it.
	drop := func() {
		m.mu.Lock()
		m.pending = nil
		m.tree.Rollback()
		m.mu.Unlock()
	}
	d, _ := measurePeak(100, finalize)
	drop()
	prev := migrations[VersionObjectIndex]
	migrations[VersionObjectIndex] = indexObjectIDsLoadingAll
	_, oldPeak := measurePeak(lowGCPercent, finalize)
	migrations[VersionObjectIndex] = prev
	drop()
	_, newPeak := measurePeak(lowGCPercent, finalize)
	drop()
	var up uint64
	_, peak := measurePeak(lowGCPercent, func() {
		finalize()
		up = m.UpgradedTo()
		if err := m.Commit(); err != nil {
			b.Fatal(err)
		}
	})
	if v, err := m.AppVersion(); err != nil || up != VersionObjectIndex || v != VersionObjectIndex {
		b.Fatalf("after the upgrade block: upgraded to %d, version %d, %v", up, v, err)
	}
	b.ReportMetric(float64(d.Microseconds())/1000, "block_ms")
	b.ReportMetric(oldPeak/(1<<20), "block_old_nocommit_peak_MiB")
	b.ReportMetric(newPeak/(1<<20), "block_new_nocommit_peak_MiB")
	b.ReportMetric(peak/(1<<20), "block_peak_MiB")
	b.ReportMetric(peak/float64(n), "block_B_per_obj")
}

// benchMachineAt is benchMachine with a genesis of app version v.
func benchMachineAt(b testing.TB, v uint64) (*Machine, chain.BagID) {
	b.Helper()
	m, err := New(b.TempDir(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	g := testGenesis()
	g.AppVersion = v
	if _, err := m.InitChain(g, genesisTime); err != nil {
		b.Fatal(err)
	}
	bag := chain.ChannelBag(1)
	commitWrites(b, m, func(s store) error {
		return s.setJSON(bagKey(bag), chain.Bag{ID: bag, Owner: alice.Account()})
	})
	return m, bag
}

// scheduleUpgrade writes the plan of an upgrade to VersionObjectIndex at
// the block after next straight into the state (as MsgUpgradeAppVersion
// would, minus its delay) and returns its height.
func scheduleUpgrade(b testing.TB, m *Machine) int64 {
	b.Helper()
	m.mu.Lock()
	at := m.height + 2
	m.mu.Unlock()
	commitWrites(b, m, func(s store) error {
		return s.setJSON(keyUpgrade, chain.UpgradePlan{Version: VersionObjectIndex, Height: at})
	})
	return at
}

// commitWrites commits a block of the writes write makes, straight into
// the tree.
func commitWrites(b testing.TB, m *Machine, write func(store) error) {
	b.Helper()
	m.mu.Lock()
	blk := newCache(m.committedReader())
	err := write(store{blk})
	if err == nil {
		var hash []byte
		if hash, err = m.stage(blk); err == nil {
			m.pending = &pendingBlock{height: m.height + 1, appHash: hash, writes: blk}
		}
	}
	m.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		b.Fatal(err)
	}
}

// lowGCPercent is the GC percent memory is measured at: the collector then
// runs each time the heap grows by a twentieth, so the live heap it counts
// at each cycle follows the work closely.
const lowGCPercent = 5

// measurePeak runs f after a collection at GC percent gc and returns its
// time and the peak live heap while it ran above the live heap before it:
// the largest of the collector's counts of live bytes, read every
// millisecond and after a collection at its end (garbage not counted, so
// the figure is what the work holds, not the collector's headroom over
// everything live in the process).
func measurePeak(gc int, f func()) (time.Duration, float64) {
	defer debug.SetGCPercent(debug.SetGCPercent(gc))
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var (
		mu   sync.Mutex
		peak = base
	)
	note := func() {
		v := read()
		mu.Lock()
		peak = max(peak, v)
		mu.Unlock()
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				note()
			}
		}
	}()
	t0 := time.Now()
	f()
	d := time.Since(t0)
	close(done)
	<-stopped
	runtime.GC()
	note()
	mu.Lock()
	defer mu.Unlock()
	return d, float64(peak - base)
}
