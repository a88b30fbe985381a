package node

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/benchutil"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	return time.Duration(benchutil.CPUSeconds() * 1e9)
}

// BenchmarkValidators measures signed transactions committed per second
// and submit-to-commit latency on a network of 1 and of 4 validators in
// this process, side by side in one run (the same block interval, the same
// load); ratio_4_to_1 is the 4-validator throughput over the 1-validator
// throughput (the target is ≥ 0.5).
func BenchmarkValidators(b *testing.B) {
	const submitters, perOp = 512, 4096
	run := func(validators int) (tps, cpuMs float64, p50, p99 time.Duration) {
		tn := newTestNet(b, validators)
		defer func() {
			for i := range tn.nodes {
				tn.stop(i)
			}
		}()
		tn.waitHeight(0, 1, time.Minute)
		tr := tn.nodes[0].Transport()
		c := chain.NewClient(tr)
		ctx := context.Background()
		if _, err := c.ChainID(ctx); err != nil {
			b.Fatal(err)
		}
		keys := make([]chain.Key, submitters)
		for i := range keys {
			keys[i] = mustKey(b)
		}
		total := int64(b.N) * perOp
		var next atomic.Int64
		var mu sync.Mutex
		lat := make([]time.Duration, 0, total)
		start, cpu0 := time.Now(), cpuTime()
		g, gctx := errgroup.WithContext(ctx)
		for w := range submitters {
			g.Go(func() error {
				for next.Add(1) <= total {
					t0 := time.Now()
					if _, err := c.Submit(gctx, keys[w], chain.MsgCreateMember{}); err != nil {
						return fmt.Errorf("account %d: %w", w, err)
					}
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		tps = float64(total) / time.Since(start).Seconds()
		cpuMs = float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(total)
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return tps, cpuMs, lat[len(lat)/2], lat[len(lat)*99/100]
	}
	b.ResetTimer()
	one, cpuOne, p50one, p99one := run(1)
	four, cpuFour, p50four, p99four := run(4)
	b.StopTimer()
	b.ReportMetric(cpuOne, "cpu_ms_per_tx_1val")
	b.ReportMetric(cpuFour, "cpu_ms_per_tx_4val")
	b.ReportMetric(one, "tx_per_s_1val")
	b.ReportMetric(four, "tx_per_s_4val")
	b.ReportMetric(four/one, "ratio_4_to_1")
	b.ReportMetric(float64(p50one.Microseconds())/1000, "latency_p50_ms_1val")
	b.ReportMetric(float64(p50four.Microseconds())/1000, "latency_p50_ms_4val")
	b.ReportMetric(float64(p99one.Microseconds())/1000, "latency_p99_ms_1val")
	b.ReportMetric(float64(p99four.Microseconds())/1000, "latency_p99_ms_4val")
}
