package store_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Sizes of BenchmarkReplication's objects: one on loopback TCP, one on the
// bandwidth-limited mocknet (where it moves at 100 Mbit/s, so it is small).
const (
	replLoopbackBytes = 128 << 20
	replLimitedBytes  = 32 << 20
	// replUplink and replProviderLink are the limited mocknet's bandwidths:
	// the uploader's uplink (shared by all its streams) and every link
	// between providers, in bytes per second.
	replUplink       = 100e6 / 8
	replProviderLink = 1e9 / 8
)

// BenchmarkReplication puts one object on 1 provider, on 3 providers by
// pushing every chunk to each (direct), and on 3 providers through a
// pipeline (each chunk sent once, passed along by the providers; the head
// rotates per chunk as the client does), each provider fsyncing into a
// block store of its own, and binds it. It reports, in one run:
//
//   - on loopback TCP (replLoopbackBytes): each put's MB/s and its ratio to
//     one raw libp2p stream between the same hosts (the ceiling), and the
//     uploader's bytes written per object byte (pipelined target <= 1.05);
//   - on a mocknet with the uploader's uplink limited to 100 Mbit/s and
//     1 Gbit/s between providers (replLimitedBytes): the N=3 puts' times
//     as multiples of the N=1 put's (pipelined target <= 1.25; direct ~3).
func BenchmarkReplication(b *testing.B) {
	for range b.N {
		loopback := newReplEnv(b, testnet.New(b, 4, testnet.WithHostOptions(func(int) []p2p.Option {
			return []p2p.Option{p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
		})), replLoopbackBytes)
		raw := loopback.rawCopy(b)
		for _, m := range []replMode{replN1, replDirect, replPipelined} {
			d, sent := loopback.put(b, m)
			mb := float64(replLoopbackBytes) / d.Seconds() / 1e6
			b.ReportMetric(mb, m.name+"_MB/s")
			b.ReportMetric(raw.Seconds()/d.Seconds(), m.name+"_ratio_vs_stream")
			b.ReportMetric(float64(sent)/float64(replLoopbackBytes), m.name+"_client_bytes_per_byte")
		}
		b.ReportMetric(float64(replLoopbackBytes)/raw.Seconds()/1e6, "libp2p_stream_MB/s")

		mn := testnet.NewMock(b, 4, 0)
		limited := newReplEnv(b, mn, replLimitedBytes)
		limited.limitUplink(replUplink)
		for i := 1; i <= 3; i++ {
			for j := i + 1; j <= 3; j++ {
				for _, l := range mn.Mocknet().LinksBetweenPeers(mn.Host(i).ID(), mn.Host(j).ID()) {
					l.SetOptions(mocknet.LinkOptions{Bandwidth: replProviderLink})
				}
			}
		}
		// The N=1 base is the faster of two puts (the first also sets up
		// the connection).
		base, _ := limited.put(b, replN1)
		if d, _ := limited.put(b, replN1); d < base {
			base = d
		}
		b.ReportMetric(base.Seconds(), "limited_N1_s")
		for _, m := range []replMode{replDirect, replPipelined} {
			d, sent := limited.put(b, m)
			b.ReportMetric(d.Seconds()/base.Seconds(), "limited_"+m.name+"_time_vs_N1")
			b.ReportMetric(float64(sent)/float64(replLimitedBytes), "limited_"+m.name+"_client_bytes_per_byte")
		}
	}
}

type replMode struct {
	name      string
	providers int
	pipelined bool
}

var (
	replN1        = replMode{"N1", 1, false}
	replDirect    = replMode{"N3_direct", 3, false}
	replPipelined = replMode{"N3_pipelined", 3, true}
)

// replEnv is an uploader (host 0) whose streams go through a counting,
// optionally rate-limited host, and three providers (hosts 1-3).
type replEnv struct {
	net    *testnet.Network
	up     *uplinkHost
	data   []byte
	res    *chunker.Result
	auth   *spAuth
	object uint64
}

func newReplEnv(b *testing.B, net *testnet.Network, size int) *replEnv {
	data := benchutil.Rand(uint64(size), size)
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	return &replEnv{
		net: net, data: data, res: res,
		up:   &uplinkHost{Host: net.Host(0).Libp2p()},
		auth: &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40},
	}
}

func (e *replEnv) limitUplink(bytesPerSec float64) { e.up.rate = bytesPerSec }

// rawCopy is the ceiling: the object over one plain stream to provider 1,
// the faster of two copies.
func (e *replEnv) rawCopy(b *testing.B) time.Duration {
	e.net.Host(1).Libp2p().SetStreamHandler(benchutil.RawProtocol, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
		_ = s.Close()
	})
	best := time.Duration(0)
	for range 2 {
		if d := benchutil.RawCopy(b, e.net.Host(0).Libp2p(), e.net.Host(1).ID(), e.data); best == 0 || d < best {
			best = d
		}
	}
	return best
}

// put stores the object in mode m on fresh block stores and returns the
// time until every provider bound it and the bytes the uploader wrote.
func (e *replEnv) put(b *testing.B, m replMode) (time.Duration, int64) {
	b.StopTimer()
	e.object++
	obj := e.object
	e.auth.register(obj, spBag, e.res.Root, uint64(e.res.Size))
	ids := make([]peer.ID, m.providers)
	for k := range m.providers {
		h := e.net.Host(k + 1)
		ids[k] = h.ID()
		bs, err := blockstore.Open(benchutil.Dir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
		if err != nil {
			b.Fatal(err)
		}
		relay := store.NewRelay(h.Libp2p())
		sh := store.NewHandler(bs.ForProtocols(), e.auth, h.Libp2p().Peerstore().PrivKey(h.ID()),
			store.WithLogger(spDiscard), store.WithRelay(relay))
		sh.Register(h.Protocol())
		defer func() {
			_ = sh.Close()
			_ = relay.Close()
			_ = bs.Close()
		}()
	}
	ctx := context.Background()
	e.up.sent.Store(0)
	b.StartTimer()
	start := time.Now()
	streams := make([]*store.Stream, m.providers)
	for k, id := range ids {
		s, err := store.Open(ctx, e.up, id)
		if err != nil {
			b.Fatal(err)
		}
		streams[k] = s
	}
	type job struct{ chunk, to int }
	work := make(chan job)
	var wg sync.WaitGroup
	for range store.MaxChunksInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				c := spPush(b, e.res, e.data, obj, j.chunk)
				if !m.pipelined {
					if _, err := streams[j.to].Push(ctx, c); err != nil {
						b.Error(err)
					}
					continue
				}
				head := j.chunk % len(ids)
				for k := 1; k < len(ids); k++ {
					c.Forward = append(c.Forward, store.Hop{Peer: ids[(head+k)%len(ids)]})
				}
				r, err := streams[head].PushPipeline(ctx, c)
				if err != nil || len(r.Receipts) != len(ids) {
					b.Errorf("pipelined push: %d receipts, failed %v, %v", len(r.Receipts), r.Failed, err)
				}
			}
		}()
	}
	for i := range e.res.Chunks {
		if m.pipelined {
			work <- job{chunk: i}
			continue
		}
		for k := range ids {
			work <- job{chunk: i, to: k}
		}
	}
	close(work)
	wg.Wait()
	for _, s := range streams {
		if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: obj, Chunks: e.res.Chunks}); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	d := time.Since(start)
	b.StopTimer()
	sent := e.up.sent.Load()
	b.StartTimer()
	return d, sent
}

// uplinkHost is the uploader's host as the store streams see it: it counts
// every byte written on the streams it opens and, with rate set, paces
// them all together to rate bytes per second, as one uplink.
type uplinkHost struct {
	host.Host
	sent atomic.Int64
	rate float64

	mu   sync.Mutex
	next time.Time // when the uplink is free again
}

func (h *uplinkHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &uplinkStream{Stream: s, h: h}, nil
}

// wait holds a write of n bytes until the uplink has carried the bytes
// written before it.
func (h *uplinkHost) wait(n int) {
	if h.rate == 0 {
		return
	}
	h.mu.Lock()
	now := time.Now()
	// A token bucket 20 ms deep: a writer that overslept catches up, as a
	// link's buffer would let it, but an idle uplink saves up no more.
	if floor := now.Add(-uplinkBurst); h.next.Before(floor) {
		h.next = floor
	}
	h.next = h.next.Add(time.Duration(float64(n) / h.rate * float64(time.Second)))
	d := h.next.Sub(now)
	h.mu.Unlock()
	time.Sleep(d) // pacing the simulated link, not waiting for an event
}

// uplinkBurst is how far behind the pacing an uplink may fall and catch up.
const uplinkBurst = 20 * time.Millisecond

type uplinkStream struct {
	network.Stream
	h *uplinkHost
}

func (s *uplinkStream) Write(p []byte) (int, error) {
	const piece = 64 << 10
	n := 0
	for len(p) > 0 {
		k := min(len(p), piece)
		s.h.wait(k)
		m, err := s.Stream.Write(p[:k])
		n += m
		s.h.sent.Add(int64(m))
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}
