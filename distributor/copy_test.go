package distributor_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// plainWriter is an http.ResponseWriter without ReadFrom that takes write
// deadlines (as HTTP/2's), counting the body's bytes.
type plainWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *plainWriter) Header() http.Header { return w.h }

func (w *plainWriter) WriteHeader(code int) { w.code = code }

func (w *plainWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *plainWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// A cached object sent to a writer that cannot take a file (HTTP/2) is
// copied through pooled buffers: the answer allocates no more for a chunk
// of eight 128 KiB spans than for one of half a span.
func TestCachedCopyAllocatesPerAnswer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	e := newEnv(t, 1)
	small := e.put(t, randomBytes(t, 64<<10), 1<<20)
	large := e.put(t, randomBytes(t, 1<<20), 1<<20) // one chunk, eight spans
	h := e.d.Server().Handler()
	allocs := func(url string, size int) float64 {
		cachedWhole(t, e, small)
		cachedWhole(t, e, large)
		w := &plainWriter{h: http.Header{}}
		serve := func() {
			clear(w.h)
			w.code, w.n = http.StatusOK, 0
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		}
		serve() // warm the pools
		n := testing.AllocsPerRun(20, serve)
		if w.code != http.StatusOK || w.n != size || w.h.Get("X-Cache") != "hit" {
			t.Fatalf("%s: status %d, %d bytes of %d, x-cache %q", url, w.code, w.n, size, w.h.Get("X-Cache"))
		}
		return n
	}
	a := allocs(e.d.AssetURL(small.ID), 64<<10)
	b := allocs(e.d.AssetURL(large.ID), 1<<20)
	t.Logf("allocations per answer: %.0f for 64 KiB, %.0f for 1 MiB", a, b)
	if b > a+1 {
		t.Fatalf("a 1 MiB cached answer allocates %.0f times, a 64 KiB one %.0f: the copy allocates per span", b, a)
	}
}
