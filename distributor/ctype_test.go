package distributor_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/satchel-net/satchel/distributor"
)

// The first request for an object being a range far into it (a player
// resuming, a CDN edge filling a slice) names the object's type, sniffed
// from its first chunk, fetched with the chunk under the range: GET and
// HEAD alike. A HEAD, which sends no bytes, fetches the first chunk only.
func TestFarFirstRangeHasContentType(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	fetched := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total") }
	for _, tc := range []struct {
		name, method, head, want string
		first, next              int // chunks fetched by the first and a second request
	}{
		// An ISO base media file: an ftyp box of brand mp42.
		{"mp4", http.MethodGet, "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4", 2, 1},
		{"png", http.MethodHead, "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "image/png", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(t, 40*chunk)
			copy(data, tc.head)
			obj := e.put(t, data, chunk)
			before := fetched()
			a, b := 30*chunk+1000, 30*chunk+1999
			resp, body := do(t, tc.method, e.d.AssetURL(obj.ID), "Range", fmt.Sprintf("bytes=%d-%d", a, b))
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("x-cache") != "miss" {
				t.Fatalf("%s of a far range: status %d, x-cache %q", tc.method, resp.StatusCode, resp.Header.Get("x-cache"))
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.want {
				t.Fatalf("%s of a far range of a never-read object: Content-Type %q, want %q", tc.method, ct, tc.want)
			}
			if tc.method == http.MethodGet && !bytes.Equal(body, data[a:b+1]) {
				t.Fatalf("far range: %d bytes, equal %v", len(body), bytes.Equal(body, data[a:b+1]))
			}
			if d, want := fetched()-before, float64(tc.first*chunk); d < want || d > want+4096 {
				t.Fatalf("a far first range fetched %.0f bytes; want %d chunks of %d bytes (the first; for a GET, the one under the range) and the root", d, tc.first, chunk)
			}
			// The type is remembered: a seek elsewhere (nothing cached)
			// names it and fetches its own chunk only (a HEAD none).
			before = fetched()
			resp, _ = do(t, tc.method, e.d.AssetURL(obj.ID), "Range", fmt.Sprintf("bytes=%d-%d", 10*chunk, 10*chunk+99))
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusPartialContent || ct != tc.want {
				t.Fatalf("a second seek: status %d, Content-Type %q, want %q", resp.StatusCode, ct, tc.want)
			}
			if d := fetched() - before; d != float64(tc.next*chunk) {
				t.Fatalf("a second seek fetched %.0f bytes; want %d chunks of %d bytes", d, tc.next, chunk)
			}
		})
	}
}
