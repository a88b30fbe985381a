package distributor_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// An object deleted on chain stops being served and leaves the cache.
func TestDeletedObjectEvicted(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 64<<10)
	obj := e.put(t, data, 8<<10)
	keep := e.put(t, randomBytes(t, 10<<10), 8<<10)
	for _, o := range []chain.DataObject{obj, keep} {
		if resp, _ := get(t, e.d.AssetURL(o.ID)); resp.StatusCode != 200 {
			t.Fatalf("GET %d: %d", o.ID, resp.StatusCode)
		}
	}
	srv := e.d.Server()
	if !srv.Cached(obj.ID) {
		t.Fatal("object not cached after a whole read")
	}
	if _, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgDeleteDataObjects{Bag: e.net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "deleted object evicted", func() bool { return !srv.Cached(obj.ID) && !srv.Serving(obj.ID) })
	if resp, _ := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted object: %d, want 404", resp.StatusCode)
	}
	if !srv.Cached(keep.ID) {
		t.Fatal("the other object left the cache too")
	}
	du, err := srv.CacheDiskUsage()
	if err != nil || du != srv.Status().CacheUsed {
		t.Fatalf("cache files hold %d bytes, the cache counts %d (%v)", du, srv.Status().CacheUsed, err)
	}
}

// A bag removed from the distributor's bucket is no longer served and
// leaves the cache.
func TestBagMovedAway(t *testing.T) {
	e := newEnv(t, 1)
	obj := e.put(t, randomBytes(t, 20<<10), 8<<10)
	if resp, _ := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	srv := e.d.Server()
	if _, err := e.net.Client.Submit(e.ctx, e.net.DistributionLead, chain.MsgUpdateBagDistributionBuckets{
		Bag: e.net.Bag, Family: e.d.Bucket.Family, Remove: []uint64{e.d.Bucket.Index},
	}); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "moved bag's object evicted", func() bool { return !srv.Cached(obj.ID) && !srv.Serving(obj.ID) })
	if resp, _ := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("object of a bag moved away: %d, want 421", resp.StatusCode)
	}
}

// A burst of distinct objects keeps the cache within its bound, every
// answer byte-exact; an object above the cacheable size is streamed but
// not cached.
func TestCacheBoundUnderBurst(t *testing.T) {
	const limit = 256 << 10
	e := newEnv(t, 1, distributor.WithCacheSize(limit), distributor.WithMaxCachedObject(100<<10))
	var objs []chain.DataObject
	var datas [][]byte
	for range 10 {
		d := randomBytes(t, 60<<10)
		objs = append(objs, e.put(t, d, 16<<10))
		datas = append(datas, d)
	}
	big := randomBytes(t, 150<<10)
	bigObj := e.put(t, big, 16<<10)

	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for round := range 3 {
		for i, o := range objs {
			wg.Go(func() {
				resp, err := http.Get(e.d.AssetURL(o.ID))
				if err != nil {
					errs <- err.Error()
					return
				}
				defer resp.Body.Close()
				var buf bytes.Buffer
				if _, err := buf.ReadFrom(resp.Body); err != nil || !bytes.Equal(buf.Bytes(), datas[i]) {
					errs <- "object differs"
				}
			})
		}
		_ = round
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	srv := e.d.Server()
	st := srv.Status()
	du, err := srv.CacheDiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if st.CacheUsed > limit || du > limit {
		t.Fatalf("cache holds %d bytes (%d on disk), bound %d", st.CacheUsed, du, limit)
	}
	if st.CacheEvicted == 0 {
		t.Fatal("nothing evicted from a cache 2.5 times too small")
	}
	if resp, body := get(t, e.d.AssetURL(bigObj.ID)); resp.StatusCode != 200 || !bytes.Equal(body, big) {
		t.Fatalf("big object: %d", resp.StatusCode)
	}
	if srv.Cached(bigObj.ID) {
		t.Fatal("object above the cacheable size was cached")
	}
}

// The cache survives a restart: an object read before is a hit after.
func TestCacheSurvivesRestart(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 40<<10)
	obj := e.put(t, data, 8<<10)
	if resp, body := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	// Meanwhile the providers go away: only the cache can answer.
	for _, p := range e.net.Providers() {
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.d.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	if !e.d.Server().Cached(obj.ID) {
		t.Fatal("cache lost over a restart")
	}
	resp, body := get(t, e.d.AssetURL(obj.ID))
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("x-cache") != "hit" {
		t.Fatalf("after restart: %d, x-cache %q", resp.StatusCode, resp.Header.Get("x-cache"))
	}
}
