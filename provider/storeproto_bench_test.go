package provider_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
)

const spRawProtocol = "/satchel/bench/raw/1.0.0"

// BenchmarkStorePush pushes 256 MiB in 1 MiB chunks over one store stream
// between two loopback TCP hosts (provider storing durably into a
// blockstore in a temp dir), binds the object, and reports the throughput as
// a ratio to the raw libp2p single-stream throughput measured in the same
// run by copying the same bytes over a plain stream between the same hosts.
// It also reports the disk's ceiling: the same chunks Put straight into a
// blockstore (store_put_MB/s, ratio_vs_store_put), since the provider
// fsyncs every chunk before it answers. SATCHEL_BENCH_DIR puts the store
// elsewhere (a tmpfs takes the disk out of
// the figure). ns/op and MB/s also count the raw copies; push_MB/s is the
// push alone.
func BenchmarkStorePush(b *testing.B) {
	const total = 256 << 20
	client, prov := benchHosts(b)
	data := spRand(42, total)
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	auth := &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40}
	auth.register(1, spBag, res.Root)
	key := prov.Peerstore().PrivKey(prov.ID())

	var rawTime, pushTime, storeTime time.Duration
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		// The ceiling: the same bytes over a plain libp2p stream, the
		// faster of two copies (the first one also warms the connection).
		best := time.Duration(0)
		for range 2 {
			if d := rawCopy(b, client, prov.ID(), data); best == 0 || d < best {
				best = d
			}
		}
		rawTime += best

		b.StopTimer()
		bs, err := blockstore.Open(spBenchDir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
		if err != nil {
			b.Fatal(err)
		}
		h := provider.NewStoreHandler(bs, auth, key, provider.WithStoreLogger(spDiscard))
		h.Register(prov)
		b.StartTimer()

		start := time.Now()
		ss, err := provider.OpenStore(context.Background(), client, prov.ID())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		work := make(chan int)
		var wg sync.WaitGroup
		for range provider.MaxChunksInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if _, err := ss.Push(ctx, spPush(b, res, data, 1, i)); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for i := range res.Chunks {
			work <- i
		}
		close(work)
		wg.Wait()
		if err := ss.Bind(ctx, provider.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); err != nil {
			b.Fatal(err)
		}
		_ = ss.Close()
		pushTime += time.Since(start)

		b.StopTimer()
		_ = h.Close()
		_ = bs.Close()
		b.StartTimer()

		// The disk's ceiling: the same chunks Put straight into a store,
		// as many at once as the stream has in flight.
		bs2, err := blockstore.Open(spBenchDir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		work = make(chan int)
		for range provider.MaxChunksInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					c := res.Chunks[i]
					if err := bs2.Put(c.CID, data[c.Offset:c.Offset+int64(c.Size)]); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for i := range res.Chunks {
			work <- i
		}
		close(work)
		wg.Wait()
		storeTime += time.Since(start)
		_ = bs2.Close()
	}
	mb := func(d time.Duration) float64 { return float64(total) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mb(pushTime), "push_MB/s")
	b.ReportMetric(mb(rawTime), "libp2p_stream_MB/s")
	b.ReportMetric(rawTime.Seconds()/pushTime.Seconds(), "ratio_vs_libp2p_stream")
	b.ReportMetric(mb(storeTime), "store_put_MB/s")
	b.ReportMetric(storeTime.Seconds()/pushTime.Seconds(), "ratio_vs_store_put")

}

// benchHosts returns two loopback TCP hosts, the second of which sinks
// spRawProtocol streams (rawCopy's far end).
func benchHosts(b *testing.B) (client, prov host.Host) {
	net := testnet.New(b, 2, testnet.WithHostOptions(func(int) []p2p.Option {
		return []p2p.Option{p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
	}))
	client, prov = net.Host(0).Libp2p(), net.Host(1).Libp2p()
	prov.SetStreamHandler(spRawProtocol, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
		_ = s.Close()
	})
	return client, prov
}

// rawCopy copies data to p over a fresh plain stream in 1 MiB writes and
// returns the time until p acknowledged the last byte: the ceiling a
// protocol moving the same bytes is measured against.
func rawCopy(b *testing.B, client host.Host, p peer.ID, data []byte) time.Duration {
	start := time.Now()
	s, err := client.NewStream(context.Background(), p, spRawProtocol)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := s.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	return time.Since(start)
}

// spBenchDir is the benchmark's store directory: SATCHEL_BENCH_DIR if set
// (for example a tmpfs, to take the disk out of the measurement), else a
// temp dir.
func spBenchDir(b *testing.B) string {
	if d := os.Getenv("SATCHEL_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "storebench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}
