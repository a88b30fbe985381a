package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/internal/logbuf"
	"github.com/satchel-net/satchel/testnet"
)

// `satchel distributor server` serves the bag of its bucket: it takes the
// bucket over from a stopped testnet distributor, publishes its endpoint in
// the operator metadata and serves an object uploaded afterwards.
func TestDistributorServerCommand(t *testing.T) {
	rpc := freeAddr(t)
	net := testnet.New(t, testnet.Providers(1), testnet.Configure(func(c *testnet.Config) { c.ChainRPCAddr = rpc }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := net.AddDistributor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\nchain:\n  rpc: http://"+rpc+"\n  genesis: "+net.Chain.GenesisFile()+"\n")
	p0 := net.Provider(0).AddrInfo()
	// An --http address in use is named by its flag.
	held := heldAddr(t)
	var heldOut, heldErr bytes.Buffer
	if code := run(ctx, []string{"-c", cfgPath, "distributor", "server", "-w", d.Worker.String(), "-B", d.Bucket.String(),
		"--key", net.KeyFile("distributor-0"), "--data", filepath.Join(home, "data"), "--http", held, "--no-publish",
		"--listen", "/ip4/127.0.0.1/tcp/0"}, &heldOut, &heldErr); code == 0 ||
		!strings.Contains(heldErr.String(), "--http "+held+": address already in use") || !strings.Contains(heldErr.String(), "pass another --http HOST:PORT") {
		t.Fatalf("distributor server --http %s (in use): exit %d, stderr %s", held, code, heldErr.String())
	}
	// A bucket that does not exist, or that the worker does not operate,
	// is refused before --data is made, --no-publish or not.
	other := d.Worker + 1
	for _, tc := range []struct{ worker, bucket, want string }{
		{d.Worker.String(), d.Bucket.Family.String() + ":99", "distribution bucket " + d.Bucket.Family.String() + ":99 does not exist"},
		{other.String(), d.Bucket.String(), "distribution worker " + other.String() + " does not operate distribution bucket " + d.Bucket.String()},
	} {
		bad := filepath.Join(home, "bad-data")
		var badOut, badErr bytes.Buffer
		if code := run(ctx, []string{"-c", cfgPath, "distributor", "server", "-w", tc.worker, "-B", tc.bucket, "--no-publish",
			"--key", net.KeyFile("distributor-0"), "--data", bad, "--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"}, &badOut, &badErr); code == 0 ||
			!strings.Contains(badErr.String(), tc.want) || strings.Contains(badErr.String(), "serving") {
			t.Fatalf("distributor server -w %s -B %s: exit %d, stderr %s; want %q before serving", tc.worker, tc.bucket, code, badErr.String(), tc.want)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Fatalf("distributor server -w %s -B %s made %s", tc.worker, tc.bucket, bad)
		}
	}
	var out, errOut logbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("distributor server stderr:\n%s", errOut.String())
		}
	})
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-c", cfgPath, "--json", "distributor", "server",
			"-w", d.Worker.String(), "-B", d.Bucket.String(),
			"--key", net.KeyFile("distributor-0"),
			"--data", filepath.Join(home, "data"),
			"--http", "127.0.0.1:0",
			"--max-fetches", "5",
			"--listen", "/ip4/127.0.0.1/tcp/0",
			"--bootstrap", fmt.Sprintf("%s/p2p/%s", p0.Addrs[0], p0.ID),
		}, &out, &errOut)
	}()
	var info distServerInfo
	testnet.Wait(t, "the server to print where it runs", func() bool {
		select {
		case code := <-done:
			t.Fatalf("distributor server exited %d early:\n%s", code, errOut.String())
		default:
		}
		return json.Unmarshal([]byte(out.String()), &info) == nil
	})
	if info.URL == "" || len(info.Buckets) != 1 || info.Buckets[0] != d.Bucket.String() {
		t.Fatalf("server info: %+v", info)
	}
	b, err := net.Client.DistributionBucket(ctx, d.Bucket)
	if err != nil || len(b.Operators) != 1 || b.Operators[0].Metadata == nil || b.Operators[0].Metadata.Endpoint != info.Endpoint {
		t.Fatalf("endpoint %q not published: %+v %v", info.Endpoint, b.Operators, err)
	}
	// --max-fetches reaches the node.
	resp, err := http.Get(info.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("\nsatchel_distributor_fetches_limit 5\n")) {
		t.Fatalf("--max-fetches 5: the node's metrics do not show the bound:\n%s", metrics)
	}
	data := bytes.Repeat([]byte("satchel "), 4096)
	obj, err := net.UploadChunked(ctx, data, 4096, 0)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	testnet.Wait(t, "the object served", func() bool {
		resp, err := http.Get(info.URL + "/api/v1/assets/" + obj.ID.String())
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	if !bytes.Equal(body, data) {
		t.Fatal("served object differs")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("distributor server exited %d after Ctrl-C:\n%s", code, errOut.String())
	}
}

func TestDistributorServerFlags(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"distributor", "server", "-B", "0:0"}, "-w/--worker and -B/--bucketId are required"},
		{[]string{"distributor", "server", "-w", "1"}, "-w/--worker and -B/--bucketId are required"},
		{[]string{"distributor", "server", "-w", "1", "-B", "x"}, "distribution bucket ID \"x\""},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--cache-size", "lots"}, "--cache-size"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--cache-size", "1GiB", "--max-cached-object", "2GiB"}, "--max-cached-object 2GiB exceeds --cache-size 1GiB"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--cache-size", "4EiB"}, "does not fit"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--min-send-rate", "fast"}, "--min-send-rate"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--max-conns", "-1"}, "--max-conns"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--max-conns-per-client", "-5"}, "--max-conns-per-client"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--max-conns", "many"}, "--max-conns"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--max-fetches", "0"}, "--max-fetches"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--max-fetches", "some"}, "--max-fetches"},
		// A wildcard listen address is no endpoint to publish.
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--http", "0.0.0.0:3434"}, "pass --endpoint"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--http", "[::]:3434"}, "pass --endpoint"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--http", ":3434"}, "pass --endpoint"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0"}, "no account key"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--http", "0.0.0.0:3434", "--endpoint", "https://cdn.example.com/"}, "no account key"},
		{[]string{"distributor", "server", "-w", "1", "-B", "0:0", "--http", "0.0.0.0:3434", "--no-publish"}, "no account key"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfgPath}, tc.args...), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want a failure naming %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
}
