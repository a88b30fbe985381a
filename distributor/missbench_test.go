package distributor_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// Sizes of BenchmarkMissServe: missObjects objects of missObjectSize bytes
// (1 MiB chunks), each read whole by its own client at once.
const (
	missObjects    = 8
	missObjectSize = 32 << 20
)

// BenchmarkMissServe reads uncached objects through the distributor's
// HTTP API (missObjects clients at once, one object each, every byte
// fetched from the one provider) and reports MB/s and CPU seconds per GiB
// beside the ceiling measured in the same run: the same leaves read
// straight from the provider with fetch.Client.ReadBlock (MaxInFlight at
// once, buffers released), which is what the distributor's miss path
// costs at the least. ratio_vs_fetch is the distributor's MB/s over the
// ceiling's (the median of interleaved rounds'); peak-RSS-MiB is the whole
// process's (provider, chain, distributor and clients) while the
// distributor serves. CPU s/GiB, the process's CPU time over the bytes
// read, is the figure other load on the machine sways least.
//
// stream: objects larger than the cache takes (WithMaxCachedObject(0)),
// streamed from memory; four rounds. cache: objects the cache keeps, so
// every fetched leaf is also written to the cache directory; one round per
// iteration, on objects uploaded for it.
func BenchmarkMissServe(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []distributor.Option
		// fresh: upload new objects for every iteration (the cache
		// keeps what a round read), which then has one round only.
		fresh  bool
		rounds int
	}{
		{"stream", []distributor.Option{distributor.WithMaxCachedObject(0)}, false, 4},
		{"cache", nil, true, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			net := testnet.New(b, testnet.Providers(1))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			d, err := net.AddDistributor(ctx, bc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			e := &env{net: net, d: d, ctx: ctx}
			h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithBootstrap(net.Provider(0).AddrInfo()))
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			fc := fetch.NewClient(h.Libp2p())
			defer fc.Close()
			prov := net.Provider(0).AddrInfo().ID
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: missObjects}}
			defer client.CloseIdleConnections()

			set := uploadMissSet(b, e)
			// Warm both paths: the distributor knows the bag's providers
			// and has a stream open, as has the fetch client.
			warm := benchPut(b, e, randomBytes(b, 1000))
			ttfb(b, d.AssetURL(warm.ID), "")
			rawFetch(b, fc, prov, set.leaves[:1])

			var rawTime, distTime time.Duration
			var rawCPU, distCPU, peak float64
			var ratios []float64
			raw := func() time.Duration {
				c0, t0 := benchutil.CPUSeconds(), time.Now()
				rawFetch(b, fc, prov, set.leaves)
				d := time.Since(t0)
				rawTime, rawCPU = rawTime+d, rawCPU+benchutil.CPUSeconds()-c0
				return d
			}
			dist := func() time.Duration {
				rss := sampleRSS(b)
				c0, t0 := benchutil.CPUSeconds(), time.Now()
				readAll(b, client, set)
				d := time.Since(t0)
				distTime, distCPU = distTime+d, distCPU+benchutil.CPUSeconds()-c0
				peak = max(peak, rss())
				return d
			}
			// Answers that gave their miss slot back (1 s blocked writing
			// to a client since a fetch): none expected from these fast
			// clients, some on a loaded machine.
			parks0 := counter(b, d.Registry(), "satchel_distributor_miss_slot_parks_total")
			b.ResetTimer()
			for i := range b.N {
				if bc.fresh && i > 0 {
					b.StopTimer()
					set = uploadMissSet(b, e)
					b.StartTimer()
				}
				// Interleaved rounds, each path first in turn, so that
				// load from elsewhere on the machine weighs on both alike;
				// the ratio is the median of the rounds'.
				for r := range bc.rounds {
					var rt, dt time.Duration
					if r%2 == 0 {
						rt, dt = raw(), dist()
					} else {
						dt, rt = dist(), raw()
					}
					ratios = append(ratios, rt.Seconds()/dt.Seconds())
				}
			}
			b.StopTimer()
			total := float64(missObjects*missObjectSize) * float64(b.N*bc.rounds)
			gib := total / (1 << 30)
			b.ReportMetric(total/distTime.Seconds()/1e6, "MB/s")
			b.ReportMetric(total/rawTime.Seconds()/1e6, "fetch_MB/s")
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "ratio_vs_fetch")
			b.ReportMetric(distCPU/gib, "cpu_s/GiB")
			b.ReportMetric(rawCPU/gib, "fetch_cpu_s/GiB")
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric(counter(b, d.Registry(), "satchel_distributor_miss_slot_parks_total")-parks0, "slot_parks")
		})
	}
}

// missSet is the objects one round reads: their URLs, contents and leaves.
type missSet struct {
	urls   []string
	data   [][]byte
	leaves []cid.Cid
}

// uploadMissSet uploads missObjects new objects and waits until the
// distributor accepts them.
func uploadMissSet(b *testing.B, e *env) missSet {
	b.Helper()
	var s missSet
	for range missObjects {
		data := randomBytes(b, missObjectSize)
		res, err := chunker.Sum(e.ctx, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range res.Chunks {
			s.leaves = append(s.leaves, c.CID)
		}
		obj := benchPut(b, e, data)
		s.urls = append(s.urls, e.d.AssetURL(obj.ID))
		s.data = append(s.data, data)
	}
	return s
}

// rawFetch reads every leaf from p with fetch.MaxInFlight readers.
func rawFetch(b *testing.B, fc *fetch.Client, p peer.ID, leaves []cid.Cid) {
	work := make(chan cid.Cid)
	var wg sync.WaitGroup
	for range fetch.MaxInFlight {
		wg.Go(func() {
			for c := range work {
				blk, err := fc.ReadBlock(context.Background(), p, c)
				if err != nil {
					b.Error(err)
				}
				blk.Release()
			}
		})
	}
	for _, c := range leaves {
		work <- c
	}
	close(work)
	wg.Wait()
}

// readAll GETs every object of s at once and checks each body's length
// and its first and last bytes (comparing every byte would weigh on the
// figure; the tests compare whole bodies).
func readAll(b *testing.B, client *http.Client, s missSet) {
	var wg sync.WaitGroup
	for i, url := range s.urls {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.Header.Get("X-Cache") == "hit" {
				b.Errorf("%s: a hit; the bench is about misses", url)
			}
			buf := make([]byte, 256<<10)
			var n int
			var head, tail []byte
			for {
				m, err := resp.Body.Read(buf)
				if head == nil && m > 0 {
					head = bytes.Clone(buf[:min(m, 64)])
				}
				if m > 0 {
					tail = append(tail[:0], buf[max(0, m-64):m]...)
				}
				n += m
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
			want := s.data[i]
			if n != len(want) || !bytes.Equal(head, want[:len(head)]) || !bytes.HasSuffix(want, tail) {
				b.Errorf("%s: %d bytes, want %d (or the first or last bytes differ)", url, n, len(want))
			}
		})
	}
	wg.Wait()
}
