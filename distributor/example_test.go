package distributor_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// A distributor for a bucket of a running network: it serves the objects
// of the bucket's bag over HTTP, fetching them from the storage providers.
// (testnet.Network.AddDistributor does the same wiring.)
func ExampleNew() {
	dir, err := os.MkdirTemp("", "satchel-distributor-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net, err := testnet.Start(ctx, dir, testnet.Config{Providers: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer net.Close()
	// The chain side: a family, a bucket holding the bag, its operator.
	td, err := net.AddDistributor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	td.Kill() // this example runs its own node for the bucket

	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithBootstrap(net.Provider(0).AddrInfo()))
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	srv, err := distributor.New(h, fc, net.Client,
		distributor.Identity{Worker: td.Worker, Buckets: []chain.DistributionBucketID{td.Bucket}},
		distributor.WithCacheDir(filepath.Join(dir, "cache")),
		distributor.WithHTTPAddr("127.0.0.1:0"),
		distributor.WithMetrics(prometheus.NewRegistry()))
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	obj, err := net.Upload(ctx, []byte("hello, satchel"), 0)
	if err != nil {
		log.Fatal(err)
	}
	url := fmt.Sprintf("%s/api/v1/assets/%d", srv.URL(), obj.ID)
	for { // until a provider accepted the object on chain
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Range", "bytes=7-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusPartialContent {
			fmt.Println(resp.StatusCode, string(body), resp.Header.Get("x-cache"))
			break
		}
		select {
		case <-ctx.Done():
			log.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Output:
	// 206 satchel miss
}
