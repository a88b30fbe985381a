package state

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// fillObjects writes n objects of bag straight into m's state (as a
// committed block would, indexes included), batch objects per block,
// bypassing transaction execution so a large state builds quickly.
// It returns the time spent computing app hashes (stage: the writes put
// into the tree and its root hashed).
func fillObjects(b testing.TB, m *Machine, bag chain.BagID, first, n, batch int) time.Duration {
	b.Helper()
	var hashing time.Duration
	for done := 0; done < n; {
		m.mu.Lock()
		blk := newCache(m.committedReader())
		for i := 0; i < batch && done < n; i, done = i+1, done+1 {
			id := chain.ObjectID(first + done)
			o := chain.DataObject{ID: id, Bag: bag, Size: 1 << 20, ContentID: fmt.Sprintf("bafkreifake%08d", id), Accepted: id%3 != 0}
			v, _ := json.Marshal(o)
			blk.set(objectKey(bag, id), v)
		}
		if err := deriveIndexes(blk); err != nil {
			m.mu.Unlock()
			b.Fatal(err)
		}
		t0 := time.Now()
		hash, err := m.stage(blk)
		hashing += time.Since(t0)
		if err == nil {
			m.pending = &pendingBlock{height: m.height + 1, appHash: hash, writes: blk}
		}
		m.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return hashing
}

func benchMachine(b testing.TB) (*Machine, chain.BagID) {
	b.Helper()
	m, err := New(b.TempDir(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	if _, err := m.InitChain(testGenesis(), genesisTime); err != nil {
		b.Fatal(err)
	}
	// The bag is written straight into the state like its objects.
	bag := chain.ChannelBag(1)
	m.mu.Lock()
	blk := newCache(m.committedReader())
	err = store{blk}.setJSON(bagKey(bag), chain.Bag{ID: bag, Owner: alice.Account()})
	if err == nil {
		var hash []byte
		if hash, err = m.stage(blk); err == nil {
			m.pending = &pendingBlock{height: 1, appHash: hash, writes: blk}
		}
	}
	m.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		b.Fatal(err)
	}
	return m, bag
}

func percentile(ds []time.Duration, p float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[int(float64(len(ds)-1)*p)].Microseconds()) / 1000
}

// BenchmarkProvenObjectsPage measures a page of 100 objects of a bag with
// 100,000 objects, on disk, read at a random cursor: answered with proofs
// by the machine and verified (VerifyWitness), as chain/verify does, minus
// the network and header check. It reports p50 and p99 of a proven,
// verified page (target p99 ≤ 50 ms), the verification alone per page, and
// the same page unproven, the ceiling measured in this run.
//
// Each iteration reads queriesPerOp pages, so that `make bench`
// (-benchtime 1x) has enough of them for a p99.
func BenchmarkProvenObjectsPage(b *testing.B) {
	const objects, pageSize, queriesPerOp = 100_000, 100, 200
	m, bag := benchMachine(b)
	fillObjects(b, m, bag, 1_000_000, objects, 10_000)
	fillObjects(b, m, bag, 2_000_000, 1, 1) // one more block: the proven height is the one before the last
	_, hash, _ := m.Info()
	rng := rand.New(rand.NewPCG(1, 2))
	req := func() (chain.ProvenQuery, []byte) {
		id := chain.ObjectID(1_000_000 + rng.IntN(objects-pageSize))
		cursor := fmt.Sprintf("%016x", uint64(id))
		data, _ := json.Marshal(chain.BagObjectsRequest{Bag: bag, PageRequest: chain.PageRequest{Cursor: cursor, Limit: pageSize}})
		height, _, _ := m.Info()
		return chain.ProvenQuery{Path: chain.QueryObjectsPage, Data: data, MinHeight: height}, data
	}
	// Warm up, as a serving node is: the first pages after the fill
	// would measure the fill's garbage collection and compactions.
	for range 50 {
		q, _ := req()
		qb, _ := json.Marshal(q)
		if _, err := m.Query(chain.QueryProven, qb); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	var proven, verify, plain []time.Duration
	var proofBytes int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N*queriesPerOp; i++ {
		q, data := req()
		qb, _ := json.Marshal(q)
		t0 := time.Now()
		wb, err := m.Query(chain.QueryProven, qb)
		if err != nil {
			b.Fatal(err)
		}
		var w Witness
		if err := json.Unmarshal(wb, &w); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ans, err := VerifyWitness(w, hash)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		var pg chain.Page[chain.DataObject]
		if err := json.Unmarshal(ans, &pg); err != nil || len(pg.Items) != pageSize {
			b.Fatalf("page of %d objects, %v", len(pg.Items), err)
		}
		if _, err := m.Query(chain.QueryObjectsPage, data); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, time.Since(t2))
		proven, verify = append(proven, t2.Sub(t0)), append(verify, t2.Sub(t1))
		proofBytes += len(wb)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(len(proven))/1024, "alloc_KiB_per_query")
	b.ReportMetric(percentile(proven, 0.5), "p50_ms")
	b.ReportMetric(percentile(proven, 0.99), "p99_ms")
	b.ReportMetric(percentile(verify, 0.5), "verify_p50_ms")
	b.ReportMetric(percentile(plain, 0.5), "unproven_p50_ms")
	b.ReportMetric(percentile(proven, 0.5)/percentile(plain, 0.5), "ratio_to_unproven")
	b.ReportMetric(percentile(verify, 0.99), "verify_p99_ms")
	b.ReportMetric(float64(proofBytes)/float64(len(proven))/1024, "answer_KiB")
}

// BenchmarkAppHashGrowth measures the cost of a block that writes 100
// objects as the state grows from 10,000 to 1,000,000 objects (about 2.3
// million keys with their indexes): hash_ms is the app hash computation
// (the block's writes put into the tree and its root hashed), block_ms the
// whole block (indexes, app hash, synced save). growth_per_log is the app
// hash cost at 1,000,000 objects over its cost at 10,000, divided by the
// growth of log2(size) (1.5): ≤ 1 means the cost grows no faster than the
// log of the state size (the target). Each size measures 20 blocks per
// iteration; the state is built in blocks of 50,000 objects, which takes
// most of the run.
func BenchmarkAppHashGrowth(b *testing.B) {
	m, bag := benchMachine(b)
	sizes := []int{10_000, 100_000, 1_000_000}
	hashCost := map[int]float64{}
	have := 0
	next := 10_000_000
	for _, size := range sizes {
		fillObjects(b, m, bag, have, size-have, 50_000)
		have = size
		const blocks = 20
		var hash, block []time.Duration
		for range blocks * max(1, b.N) {
			t0 := time.Now()
			h := fillObjects(b, m, bag, next, 100, 100)
			block, hash = append(block, time.Since(t0)), append(hash, h)
			next += 100
		}
		hashCost[size] = percentile(hash, 0.5)
		b.ReportMetric(hashCost[size], fmt.Sprintf("hash_ms_%dk", size/1000))
		b.ReportMetric(percentile(block, 0.5), fmt.Sprintf("block_ms_%dk", size/1000))
	}
	growth := hashCost[1_000_000] / hashCost[10_000]
	b.ReportMetric(growth/(math.Log2(1_000_000)/math.Log2(10_000)), "growth_per_log")
}
