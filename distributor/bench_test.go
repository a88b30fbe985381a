package distributor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// benchClients is how many clients request at once.
const benchClients = 64

// benchEnv is a network of one provider and one distributor for a bench.
func benchEnv(b *testing.B) *env {
	b.Helper()
	net := testnet.New(b, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	d, err := net.AddDistributor(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return &env{net: net, d: d, ctx: ctx}
}

func benchPut(b *testing.B, e *env, data []byte) chain.DataObject {
	b.Helper()
	obj, err := e.net.Upload(e.ctx, data, 0)
	if err != nil {
		b.Fatal(err)
	}
	testnet.Wait(b, "object accepted at the distributor", func() bool {
		req, _ := http.NewRequest(http.MethodHead, e.d.AssetURL(obj.ID), nil)
		req.Header.Set("If-None-Match", `"`+obj.ContentID+`"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotModified
	})
	return obj
}

// load has benchClients clients GET urls round-robin, perClient requests
// each, and returns requests per second and bytes per second.
func load(b *testing.B, client *http.Client, urls []string, perClient int) (rps, bps float64) {
	b.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var failed error
	start := time.Now()
	for c := range benchClients {
		wg.Go(func() {
			var n int64
			for i := range perClient {
				resp, err := client.Get(urls[(c+i)%len(urls)])
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				m, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n += m
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	d := time.Since(start).Seconds()
	if failed != nil {
		b.Fatal(failed)
	}
	return float64(benchClients*perClient) / d, float64(total) / d
}

// BenchmarkCachedServe serves cached objects to 64 concurrent clients and
// reports requests and bytes per second against http.FileServer serving
// the same files from disk in the same run (ratio, target ≥ 0.8: the median
// of eight interleaved rounds' ratios; cpu-ratio-to-fileserver compares the
// CPU time the same requests took, steadier on a busy machine), and the
// process's peak RSS while serving.
func BenchmarkCachedServe(b *testing.B) {
	for _, bc := range []struct {
		name      string
		size      int
		objects   int
		perClient int
	}{
		{"64KiB", 64 << 10, 16, 128},
		{"4MiB", 4 << 20, 8, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := benchEnv(b)
			dir := b.TempDir()
			var dURLs, fNames []string
			for i := range bc.objects {
				data := randomBytes(b, bc.size)
				obj := benchPut(b, e, data)
				name := fmt.Sprintf("f%d", i)
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					b.Fatal(err)
				}
				dURLs = append(dURLs, e.d.AssetURL(obj.ID))
				fNames = append(fNames, name)
			}
			fs := httptest.NewServer(http.FileServer(http.Dir(dir)))
			defer fs.Close()
			var fURLs []string
			for _, n := range fNames {
				fURLs = append(fURLs, fs.URL+"/"+n)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
			defer client.CloseIdleConnections()
			load(b, client, dURLs, 1) // warm the cache
			load(b, client, fURLs, 1)
			peak := sampleRSS(b)
			b.ResetTimer()
			// Interleaved rounds, each server first in turn, so that load
			// from elsewhere on the machine weighs on both alike; the
			// ratio is the median of the rounds' ratios.
			const rounds = 8
			var dr, db, fr, dcpu, fcpu float64
			var ratios []float64
			timed := func(urls []string) (rps, bps, cpu float64) {
				c0 := benchutil.CPUSeconds()
				rps, bps = load(b, client, urls, bc.perClient/rounds)
				return rps, bps, benchutil.CPUSeconds() - c0
			}
			for range b.N {
				for i := range rounds {
					var r1, c1, r2, b2, c2 float64
					if i%2 == 0 {
						r1, _, c1 = timed(fURLs)
						r2, b2, c2 = timed(dURLs)
					} else {
						r2, b2, c2 = timed(dURLs)
						r1, _, c1 = timed(fURLs)
					}
					fr, dr, db, fcpu, dcpu = fr+r1, dr+r2, db+b2, fcpu+c1, dcpu+c2
					ratios = append(ratios, r2/r1)
				}
			}
			b.StopTimer()
			n := float64(b.N * rounds)
			slices.Sort(ratios)
			b.ReportMetric(dr/n, "req/s")
			b.ReportMetric(db/n/1e6, "MB/s")
			b.ReportMetric(fr/n, "fileserver-req/s")
			b.ReportMetric(ratios[len(ratios)/2], "ratio-to-fileserver")
			// The same number of requests each: the process's CPU seconds
			// (server, clients and the idle network alike) spent on the
			// file server's requests over the distributor's, which the
			// machine's other load sways far less than throughput.
			b.ReportMetric(fcpu/dcpu, "cpu-ratio-to-fileserver")
			b.ReportMetric(peak(), "peak-RSS-MiB")
		})
	}
}

// BenchmarkMissTTFB measures the time to first byte of a miss (a whole
// 4 MiB object) and of a seek to 7/8 into an uncached 48 MiB object of
// 256 KiB chunks, as multiples of one fetch round trip (one 256 KiB leaf
// read straight from the provider, measured in the same run; target ≤ 2).
// 192 leaves need interior nodes: the DAG has the depth (root, interior,
// leaves) of a 1 GiB object of 1 MiB chunks. A second seek into the same
// object (a player seeking again: the content type is known) is reported
// too. Medians of seekSamples. far-seek-ttfb/rtt is the figure the target
// is about: a seek costs the covering leaf's round trip, plus the manifest's
// when the DAG was not warmed at acceptance; a first seek also fetches the
// first leaf, in parallel, for the content type (next-seek-ttfb/rtt does
// not).
func BenchmarkMissTTFB(b *testing.B) {
	const seekSamples = 5
	e := benchEnv(b)
	h, err := p2p.New(e.ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithBootstrap(e.net.Provider(0).AddrInfo()))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	prov := e.net.Provider(0).AddrInfo().ID
	// Warm the distributor: the bag's providers found, a stream open.
	warm := benchPut(b, e, randomBytes(b, 1000))
	ttfb(b, e.d.AssetURL(warm.ID), "")
	const size = 48 << 20
	var rtts, seeks, nexts, misses []time.Duration
	b.ResetTimer()
	for range b.N {
		for range seekSamples {
			b.StopTimer()
			obj, err := e.net.UploadChunked(e.ctx, randomBytes(b, size), 256<<10, 0)
			if err != nil {
				b.Fatal(err)
			}
			small, err := e.net.UploadChunked(e.ctx, randomBytes(b, 4<<20), 256<<10, 0)
			if err != nil {
				b.Fatal(err)
			}
			e.waitAcceptedB(b, obj)
			e.waitAcceptedB(b, small)
			b.StartTimer()
			root, _ := cid.Decode(obj.ContentID)
			leaf := firstLeaf(b, fc, prov, root)
			t0 := time.Now()
			if _, err := fc.GetBlock(e.ctx, prov, leaf); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
			seeks = append(seeks, ttfb(b, e.d.AssetURL(obj.ID), fmt.Sprintf("bytes=%d-%d", size-size/8, size-size/8+1000)))
			// A player's next seek: the content type is known, the
			// target chunk alone is fetched.
			nexts = append(nexts, ttfb(b, e.d.AssetURL(obj.ID), fmt.Sprintf("bytes=%d-%d", size/2, size/2+1000)))
			misses = append(misses, ttfb(b, e.d.AssetURL(small.ID), ""))
		}
	}
	b.StopTimer()
	rtt := median(rtts)
	b.ReportMetric(float64(rtt.Microseconds())/1000, "fetch-rtt-ms")
	b.ReportMetric(float64(median(seeks).Microseconds())/1000, "far-seek-ttfb-ms")
	b.ReportMetric(float64(median(seeks))/float64(rtt), "far-seek-ttfb/rtt")
	b.ReportMetric(float64(median(nexts))/float64(rtt), "next-seek-ttfb/rtt")
	b.ReportMetric(float64(median(misses))/float64(rtt), "miss-ttfb/rtt")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func (e *env) waitAcceptedB(b *testing.B, obj chain.DataObject) {
	b.Helper()
	testnet.Wait(b, "object accepted at the distributor", func() bool {
		req, _ := http.NewRequest(http.MethodHead, e.d.AssetURL(obj.ID), nil)
		req.Header.Set("If-None-Match", `"`+obj.ContentID+`"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotModified
	})
}

// ttfb returns the time from sending a GET to its first body byte; the
// rest of the body is read and dropped.
func ttfb(b *testing.B, url, rng string) time.Duration {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		b.Fatal(err)
	}
	d := time.Since(t0)
	if strings.HasPrefix(rng, "bytes=") {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return d
}

// procStatusMiB reads a kB field of /proc/self/status in MiB.
func procStatusMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// firstLeaf descends from root to its first raw leaf, through the fetch
// client (which also warms the connection).
func firstLeaf(b *testing.B, fc *fetch.Client, p peer.ID, root cid.Cid) cid.Cid {
	b.Helper()
	c := root
	for c.Type() != cid.Raw {
		blk, err := fc.GetBlock(context.Background(), p, c)
		if err != nil {
			b.Fatal(err)
		}
		pn, err := dag.DecodeProtobuf(blk)
		if err != nil || len(pn.Links()) == 0 {
			b.Fatalf("block %s: not a dag-pb node with links: %v", c, err)
		}
		c = pn.Links()[0].Cid
	}
	return c
}

// BenchmarkMissLoadRSS has 64 clients read whole uncached 32 MiB objects
// at once (streamed, never cached: every byte comes from the provider),
// and reports the process's peak RSS and its growth over the load (target:
// the distributor within 256 MiB whatever the object sizes).
func BenchmarkMissLoadRSS(b *testing.B) {
	net := testnet.New(b, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := net.AddDistributor(ctx, distributor.WithMaxCachedObject(0))
	if err != nil {
		b.Fatal(err)
	}
	e := &env{net: net, d: d, ctx: ctx}
	var urls []string
	for range 4 {
		obj := benchPut(b, e, randomBytes(b, 32<<20))
		urls = append(urls, d.AssetURL(obj.ID))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()
	debug.FreeOSMemory() // return the uploads' heap, so growth shows
	before := currentRSSMiB()
	peak := sampleRSS(b)
	b.ResetTimer()
	var bps float64
	for range b.N {
		_, x := load(b, client, urls, 1)
		bps += x
	}
	b.StopTimer()
	p := peak()
	b.ReportMetric(bps/float64(b.N)/1e6, "MB/s")
	b.ReportMetric(p, "peak-RSS-MiB")
	b.ReportMetric(p-before, "RSS-growth-MiB")
}

// sampleRSS samples the process's RSS every 5 ms until the returned func
// is called, which returns the highest sample in MiB. (The kernel's own
// peak cannot always be reset.)
func sampleRSS(b *testing.B) func() float64 {
	stop := make(chan struct{})
	done := make(chan float64)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var hi float64
		for {
			hi = max(hi, currentRSSMiB())
			select {
			case <-stop:
				done <- hi
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(stop); return <-done }
}

// currentRSSMiB returns the process's RSS in MiB (Linux; 0 elsewhere).
func currentRSSMiB() float64 { return procStatusMiB("VmRSS:") }
