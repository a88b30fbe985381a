package distributor_test

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
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
