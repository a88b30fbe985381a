package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
)

// --busy-wait reaches the client of get and put: with every provider held
// busy for real, each fails saying how long it waited for them, which is
// the flag's wait (its pauses of 0.25 s and 0.5 s fit 750ms, the next one
// would not), not the default's; a negative wait is refused.
func TestBusyWaitFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	pn := startPutNet(t)
	bag := pn.net.Bag.String()
	path, data := putTestFile(t, 3<<20)
	var put putOutput
	if err := json.Unmarshal([]byte(pn.ok("put", path, "--bag", bag, "--chunk-size", "1MiB", "--json")), &put); err != nil {
		t.Fatal(err)
	}
	pn.fails("--busy-wait -1s: want 0 or more", "get", put.CID, "--busy-wait", "-1s", "-o", filepath.Join(t.TempDir(), "x"))
	pn.fails("--busy-wait -1s: want 0 or more", "put", path, "--bag", bag, "--busy-wait", "-1s")
	pn.fails(`invalid argument "soon" for "--busy-wait"`, "get", put.CID, "--busy-wait", "soon")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leaf := chunker.ChunkCID(data[:1<<20])
	for _, p := range pn.net.Providers() {
		if err := p.LimitFetchBudget(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pn.net.Providers() {
		release, err := p.HoldFetchBudget(ctx, leaf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
	}
	pn.fails("were busy serving others for 750ms; retry later", "get", put.CID, "--bag", bag, "--busy-wait", "900ms", "-o", filepath.Join(t.TempDir(), "x"))

	for _, p := range pn.net.Providers() {
		release, err := p.HoldStoreBudget(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
	}
	path2, _ := putTestFile(t, 2<<20)
	pn.fails("busy storing others' data for 750ms", "put", path2, "--bag", bag, "--chunk-size", "1MiB", "--busy-wait", "900ms")
}
