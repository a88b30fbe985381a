package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/api"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/verify"
)

// bigBag starts a node with a channel bag of n objects, registered perTx
// to a transaction.
func bigBag(b *testing.B, n, perTx int) (*node.Node, chain.BagID) {
	b.Helper()
	lead, alice := key("lead"), key("alice")
	nd, err := node.New(b.TempDir(), node.WithRPCAddr(""), node.WithP2PAddr(freeAddr(b)), node.WithLogger(quiet),
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nd.Stop() })
	c := chain.NewClient(nd.Transport())
	submit := func(k chain.Key, m chain.Msg) chain.Committed {
		res, err := c.Submit(ctx, k, m)
		if err != nil {
			b.Fatalf("%s: %v", m.Type(), err)
		}
		return res
	}
	submit(lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: uint64(n), SizeLimit: 1 << 40})
	submit(alice, chain.MsgCreateMember{Handle: "alice"})
	submit(alice, chain.MsgCreateChannel{Member: 0})
	bag := chain.ChannelBag(0)
	// Registered concurrently (the client hands out nonces), within the
	// nonce window.
	var g errgroup.Group
	g.SetLimit(16)
	var mu sync.Mutex
	var last int64
	for first := 0; first < n; first += perTx {
		g.Go(func() error {
			specs := make([]chain.ObjectSpec, 0, perTx)
			for i := first; i < min(first+perTx, n); i++ {
				h, _ := multihash.Sum([]byte(fmt.Sprint("object ", i)), multihash.SHA2_256, -1)
				specs = append(specs, chain.ObjectSpec{Size: 1 << 20, ContentID: cid.NewCidV1(cid.Raw, h).String()})
			}
			res, err := c.Submit(ctx, alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs})
			if err != nil {
				return fmt.Errorf("register objects from %d: %w", first, err)
			}
			mu.Lock()
			last = max(last, res.Height)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := nd.Transport().WaitForHeight(ctx, last+1); err != nil {
		b.Fatal(err)
	}
	return nd, bag
}

// BenchmarkAPIObjectsPage measures the query API end to end: GET
// /api/v1/bags/{bag}/objects?cursor=…&limit=100 on a bag of 100,000
// objects at random cursors, served over HTTP from verify.Transport (the
// page's range proof checked against a header verified with the light
// client) over an embedded node making blocks as usual; 200 pages per
// iteration. It reports p50 and p99 (target p99 ≤ 50 ms) and the size of
// the answer.
func BenchmarkAPIObjectsPage(b *testing.B) {
	const objects, perTx, pageSize, queriesPerOp = 100_000, 1000, 100, 200
	nd, bag := bigBag(b, objects, perTx)
	trust, err := verify.TrustGenesisFile(nd.GenesisFile())
	if err != nil {
		b.Fatal(err)
	}
	vt, err := verify.New(context.Background(), nd.Transport(), trust, verify.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(vt, api.WithLogger(quiet)))
	defer srv.Close()
	var info chain.Bag
	res, err := http.Get(srv.URL + "/api/v1/bags/" + string(bag))
	if err == nil {
		err = json.NewDecoder(res.Body).Decode(&info)
		res.Body.Close()
	}
	if err != nil || info.ObjectsCount != objects {
		b.Fatalf("bag of %d objects, %v; want %d", info.ObjectsCount, err, objects)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for range b.N * queriesPerOp {
		url := fmt.Sprintf("%s/api/v1/bags/%s/objects?limit=%d&cursor=%016x", srv.URL, bag, pageSize, rng.IntN(objects-pageSize))
		t0 := time.Now()
		res, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var pg chain.Page[chain.DataObject]
		err = json.NewDecoder(res.Body).Decode(&pg)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || len(pg.Items) != pageSize {
			b.Fatalf("GET %s: %d, %d objects, %v", url, res.StatusCode, len(pg.Items), err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50_ms")
	b.ReportMetric(ms(0.99), "p99_ms")
}
