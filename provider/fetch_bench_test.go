package provider_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// servesAll is a FetchPolicy that serves every block held.
type servesAll struct{}

func (servesAll) Serves(context.Context, cid.Cid) bool { return true }

// BenchmarkFetch reads 256 MiB of 1 MiB blocks from one provider over
// /satchel/fetch/1.0.0 (GetBlock, MaxFetchInFlight at once, every block
// verified on both sides, the provider reading with direct I/O) and
// reports the throughput as a ratio to one plain libp2p stream between the
// same hosts measured in the same run, with the CPU seconds per GiB of
// each (both sides, all cores): fetch_cpu_s/GiB against raw_cpu_s/GiB is
// what the protocol costs on top of the transport.
func BenchmarkFetch(b *testing.B) {
	const total = 256 << 20
	client, prov := benchHosts(b)
	bs, err := blockstore.Open(spBenchDir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	data := spRand(43, total)
	var cids []cid.Cid
	for off := 0; off < total; off += 1 << 20 {
		blk := data[off : off+1<<20]
		c := chunker.ChunkCID(blk)
		if err := bs.Put(c, blk); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, c)
	}
	h := provider.NewFetchHandler(bs, servesAll{}, provider.WithFetchLogger(spDiscard))
	h.Register(prov)
	defer h.Close()
	fc := provider.NewFetchClient(client)
	defer fc.Close()

	var rawTime, fetchTime time.Duration
	var rawCPU, fetchCPU float64
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		cpu0 := benchCPU()
		rawTime += rawCopy(b, client, prov.ID(), data)
		rawCPU += benchCPU() - cpu0

		cpu0, start := benchCPU(), time.Now()
		work := make(chan cid.Cid)
		var wg sync.WaitGroup
		for range provider.MaxFetchInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					if _, err := fc.GetBlock(context.Background(), prov.ID(), c); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for _, c := range cids {
			work <- c
		}
		close(work)
		wg.Wait()
		fetchTime += time.Since(start)
		fetchCPU += benchCPU() - cpu0
	}
	gib := float64(total) * float64(b.N) / (1 << 30)
	mb := func(d time.Duration) float64 { return float64(total) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mb(fetchTime), "fetch_MB/s")
	b.ReportMetric(mb(rawTime), "libp2p_stream_MB/s")
	b.ReportMetric(rawTime.Seconds()/fetchTime.Seconds(), "ratio_vs_libp2p_stream")
	b.ReportMetric(fetchCPU/gib, "fetch_cpu_s/GiB")
	b.ReportMetric(rawCPU/gib, "raw_cpu_s/GiB")
}

// benchCPU returns the user and system CPU seconds this process has used.
func benchCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
