package distributor_test

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// Concurrent requests for one uncached object share its fetches: every
// block comes from the providers once.
func TestConcurrentRequestsShareFetches(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 512<<10)
	obj := e.put(t, data, 64<<10, 0, 1)
	const clients = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	bad := make(chan string, clients)
	for range clients {
		wg.Go(func() {
			<-start
			resp, err := http.Get(e.d.AssetURL(obj.ID))
			if err != nil {
				bad <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, data) {
				bad <- "body differs"
			}
		})
	}
	close(start)
	wg.Wait()
	close(bad)
	for s := range bad {
		t.Fatal(s)
	}
	// The content once, plus the root node (a few hundred bytes).
	fetched := counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	if fetched < float64(len(data)) || fetched > float64(len(data))+4096 {
		t.Fatalf("fetched %.0f bytes from providers for %d clients of a %d-byte object", fetched, clients, len(data))
	}
}

// A range fetches only the chunks it covers, and the first chunk once:
// a far seek into a never-read object fetches the chunk under it and the
// first one (whose bytes give its Content-Type) at once; once the type is
// known, seeks fetch only their own chunks, even with nothing cached.
func TestRangeFetchesOnlyItsChunks(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	data := randomBytes(t, 32*chunk)
	copy(data, "%PDF-1.7\n") // a type the first bytes give away
	obj := e.put(t, data, chunk)
	srv := e.d.Server()
	// The bytes fetched once no fetch runs: a leaf read ahead and not read
	// may still be on its way when its answer ends.
	fetched := func() float64 {
		testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
		return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	}
	resp, body := get(t, e.d.AssetURL(obj.ID), "Range", "bytes=1000000-1000099")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[1000000:1000100]) {
		t.Fatalf("range: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("a far seek into a never-read object has Content-Type %q, want application/pdf", ct)
	}
	// Leaf 15 (the range), leaf 0 (the type) and the root node, nothing
	// else.
	first := fetched()
	if first < 2*chunk || first > 2*chunk+4096 {
		t.Fatalf("a 100-byte range fetched %.0f bytes; want two %d-byte chunks and the root", first, chunk)
	}
	resp, body = get(t, e.d.AssetURL(obj.ID), "Range", "bytes=1500000-1500099,1600000-1600099")
	if resp.StatusCode != 206 || !bytes.Contains(body, data[1500000:1500100]) || !bytes.Contains(body, data[1600000:1600100]) {
		t.Fatalf("multi-range: %d", resp.StatusCode)
	}
	if !bytes.Contains(body, []byte("Content-Type: application/pdf")) {
		t.Errorf("the parts of a multi-range answer do not name the type application/pdf")
	}
	// Leaves 22 and 24, not 23 between them (a multi-range answer reads
	// ahead within each range only); not leaf 0, which is not cached: the
	// type was remembered.
	second := fetched()
	if d := second - first; d != 2*chunk {
		t.Fatalf("two ranges fetched %.0f bytes; want two %d-byte chunks", d, chunk)
	}
	resp, _ = get(t, e.d.AssetURL(obj.ID), "Range", "bytes=2000000-2000099")
	if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Fatalf("a seek after the type was sniffed has Content-Type %q, want application/pdf", ct)
	}
	if d := fetched() - second; d != chunk {
		t.Fatalf("a seek after the type was sniffed fetched %.0f bytes; want its one %d-byte chunk", d, chunk)
	}
}
