package distributor_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// env is a network with one distributor serving its bag.
type env struct {
	net *testnet.Network
	d   *testnet.Distributor
	ctx context.Context
}

func newEnv(t *testing.T, providers int, opts ...distributor.Option) *env {
	t.Helper()
	net := testnet.New(t, testnet.Providers(providers))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := net.AddDistributor(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{net: net, d: d, ctx: ctx}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// ownDistributor stops e's distributor and starts one of the same worker
// and bucket on a new host, reading blocks through the source wrap makes
// of that host's fetch client (a wrapper that injects a fault a real
// provider cannot be made to show), with opts; it serves until the test
// ends.
func (e *env) ownDistributor(t *testing.T, wrap func(*fetch.Client) distributor.BlockSource, opts ...distributor.Option) *distributor.Server {
	t.Helper()
	return e.ownDistributorOn(t, e.net.Client, wrap, opts...)
}

// ownDistributorOn is ownDistributor reading the chain through c.
func (e *env) ownDistributorOn(t *testing.T, c distributor.ChainReader, wrap func(*fetch.Client) distributor.BlockSource, opts ...distributor.Option) *distributor.Server {
	t.Helper()
	td := e.d
	if err := td.Kill(); err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(e.ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		p2p.WithBootstrap(e.net.Provider(0).AddrInfo(), e.net.Provider(1).AddrInfo()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	fc := fetch.NewClient(h.Libp2p())
	t.Cleanup(func() { fc.Close() })
	opts = append([]distributor.Option{distributor.WithCacheDir(filepath.Join(t.TempDir(), "cache")), distributor.WithHTTPAddr("127.0.0.1:0")}, opts...)
	srv, err := distributor.New(h, wrap(fc), c,
		distributor.Identity{Worker: td.Worker, Buckets: []chain.DistributionBucketID{td.Bucket}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// put uploads data in chunks of chunkSize to the providers named and waits
// until the distributor serves it as accepted.
func (e *env) put(t *testing.T, data []byte, chunkSize int, to ...int) chain.DataObject {
	t.Helper()
	obj, err := e.net.UploadChunked(e.ctx, data, chunkSize, to...)
	if err != nil {
		t.Fatal(err)
	}
	e.waitAccepted(t, obj)
	return obj
}

// waitAccepted waits until the distributor answers 304 to a conditional
// HEAD: it knows the object as accepted (and fetches nothing for it).
func (e *env) waitAccepted(t *testing.T, obj chain.DataObject) {
	t.Helper()
	testnet.Wait(t, "object accepted at the distributor", func() bool {
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

// get does a GET with optional headers (name, value pairs) and returns the
// response with its body read.
func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, hdr...)
}

func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// counter reads the counter name (summed over its labels) from reg.
func counter(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, err := metricsutil.Counter(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gauge reads the gauge name (summed over its labels) from reg.
func gauge(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, err := metricsutil.Gauge(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
