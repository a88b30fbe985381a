package fetch_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// servesAll is a Policy that serves every block held.
type servesAll struct{}

func (servesAll) Serves(context.Context, cid.Cid) bool { return true }

// BenchmarkFetch reads 256 MiB of 1 MiB blocks from one provider over
// /satchel/fetch/1.0.0 (GetBlock, MaxInFlight at once, every block
// verified on both sides, the provider reading with direct I/O) and
// reports the throughput as a ratio to one plain libp2p stream between the
// same hosts measured in the same run, with the CPU seconds per GiB of
// each (both sides, all cores): fetch_cpu_s/GiB against raw_cpu_s/GiB is
// what the protocol costs on top of the transport.
func BenchmarkFetch(b *testing.B) { benchFetch(b) }

// BenchmarkFetchHeldGETs is BenchmarkFetch with the provider holding
// MaxHeldGETs replies per stream (the reply being written and the next
// prepared) and with it holding MaxInFlight, one per request it reads
// ahead: what the bound on a non-reading stream's memory costs a reader
// that reads.
func BenchmarkFetchHeldGETs(b *testing.B) {
	for _, n := range []int{fetch.MaxHeldGETs, fetch.MaxInFlight} {
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) { benchFetch(b, fetch.WithHeldGETs(n)) })
	}
}

// benchFetch is BenchmarkFetch with the handler options opts.
func benchFetch(b *testing.B, opts ...fetch.Option) {
	const total = 256 << 20
	ch, ph := benchutil.Hosts(b)
	client, prov := ch.Libp2p(), ph.Libp2p()
	bs, err := blockstore.Open(benchutil.Dir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	data := benchutil.Rand(43, total)
	var cids []cid.Cid
	for off := 0; off < total; off += 1 << 20 {
		blk := data[off : off+1<<20]
		c := chunker.ChunkCID(blk)
		if err := bs.Put(c, blk); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, c)
	}
	h := fetch.NewHandler(bs.ForProtocols(), servesAll{}, append(opts, fetch.WithLogger(slog.New(slog.DiscardHandler)))...)
	h.Register(ph.Protocol())
	defer h.Close()
	fc := fetch.NewClient(client)
	defer fc.Close()

	var rawTime, fetchTime time.Duration
	var rawCPU, fetchCPU float64
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		cpu0 := benchutil.CPUSeconds()
		rawTime += benchutil.RawCopy(b, client, prov.ID(), data)
		rawCPU += benchutil.CPUSeconds() - cpu0

		cpu0, start := benchutil.CPUSeconds(), time.Now()
		work := make(chan cid.Cid)
		var wg sync.WaitGroup
		for range fetch.MaxInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					// As a download reads: verified, the buffer handed
					// back once used.
					blk, err := fc.ReadBlock(context.Background(), prov.ID(), c)
					if err != nil {
						b.Error(err)
					}
					blk.Release()
				}
			}()
		}
		for _, c := range cids {
			work <- c
		}
		close(work)
		wg.Wait()
		fetchTime += time.Since(start)
		fetchCPU += benchutil.CPUSeconds() - cpu0
	}
	gib := float64(total) * float64(b.N) / (1 << 30)
	mb := func(d time.Duration) float64 { return float64(total) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mb(fetchTime), "fetch_MB/s")
	b.ReportMetric(mb(rawTime), "libp2p_stream_MB/s")
	b.ReportMetric(rawTime.Seconds()/fetchTime.Seconds(), "ratio_vs_libp2p_stream")
	b.ReportMetric(fetchCPU/gib, "fetch_cpu_s/GiB")
	b.ReportMetric(rawCPU/gib, "raw_cpu_s/GiB")
}
