package distributor_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// A cache bounded at 10 GiB on a disk of 3 MiB: an object that does not
// fit beside the one cached before evicts it, is cached whole, and is then
// answered from the cache alone (the operator's report: 20 GETs fetched the
// block that would not fit 20 times, nothing evicted, nothing counted).
func TestCacheFullDiskMakesRoom(t *testing.T) {
	disk := distributor.SmallDisk(t, "3m")
	e := newEnv(t, 1, distributor.WithCacheDir(filepath.Join(disk, "cache")))
	first := e.put(t, randomBytes(t, 1_500_000), 256<<10)
	data := randomBytes(t, 2_000_000)
	obj := e.put(t, data, 256<<10)
	srv, reg := e.d.Server(), e.d.Registry()
	hit := func(what string, id chain.ObjectID) {
		testnet.Wait(t, what, func() bool {
			resp, _ := do(t, http.MethodHead, e.d.AssetURL(id))
			return resp.Header.Get("X-Cache") == "hit"
		})
	}
	get(t, e.d.AssetURL(first.ID))
	hit("the first object cached whole", first.ID)
	if resp, body := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET on a full disk: %d, %d bytes", resp.StatusCode, len(body))
	}
	hit("the object cached whole on the full disk", obj.ID)
	if srv.Cached(first.ID) {
		t.Fatal("the object cached first was not evicted for room")
	}
	fetched := counter(t, reg, "satchel_distributor_fetched_bytes_total")
	for i := range 19 {
		resp, body := get(t, e.d.AssetURL(obj.ID))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) || resp.Header.Get("X-Cache") != "hit" {
			t.Fatalf("GET %d: %d, equal %v, x-cache %q", i+2, resp.StatusCode, bytes.Equal(body, data), resp.Header.Get("X-Cache"))
		}
	}
	if got := counter(t, reg, "satchel_distributor_fetched_bytes_total"); got != fetched {
		t.Fatalf("answers from the cache fetched %v bytes", got-fetched)
	}
	if n := counter(t, reg, "satchel_distributor_cache_write_failures_total"); n < 1 {
		t.Fatal("the writes the full disk failed were not counted")
	}
	if lim := srv.Status().CacheLimit; lim > 3<<20 {
		t.Fatalf("cache bound %d after a 3 MiB disk filled up", lim)
	}
}
