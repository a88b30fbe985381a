package distributor_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/satchel-net/satchel/testnet"
)

// A 300 KiB object in 1 KiB chunks has a two-level DAG (174 links per
// node): reads walk root → interior → leaf.
func TestRangesByteExact(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 300<<10+77)
	obj := e.put(t, data, 1<<10)
	url := e.d.AssetURL(obj.ID)

	// A far seek first, on a cold cache.
	resp, body := get(t, url, "Range", "bytes=250000-250099")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[250000:250100]) {
		t.Fatalf("far range: %d, %d bytes, match %v", resp.StatusCode, len(body), bytes.Equal(body, data[250000:250100]))
	}
	if got := resp.Header.Get("x-cache"); got != "miss" {
		t.Errorf("x-cache of the first request = %q, want miss", got)
	}
	if got := resp.Header.Get("Content-Range"); got != fmt.Sprintf("bytes 250000-250099/%d", len(data)) {
		t.Errorf("Content-Range = %q", got)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		a := rng.IntN(len(data))
		b := a + rng.IntN(min(len(data)-a, 40<<10))
		resp, body := get(t, url, "Range", fmt.Sprintf("bytes=%d-%d", a, b))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[a:b+1]) {
			t.Fatalf("range %d-%d: status %d, %d bytes, match %v", a, b, resp.StatusCode, len(body), bytes.Equal(body, data[a:b+1]))
		}
	}
	// Suffix and open-ended ranges.
	if resp, body := get(t, url, "Range", "bytes=-1000"); resp.StatusCode != 206 || !bytes.Equal(body, data[len(data)-1000:]) {
		t.Fatalf("suffix range: %d", resp.StatusCode)
	}
	if resp, body := get(t, url, "Range", "bytes=299000-"); resp.StatusCode != 206 || !bytes.Equal(body, data[299000:]) {
		t.Fatalf("open range: %d", resp.StatusCode)
	}

	// Several ranges: a multipart/byteranges answer.
	spans := [][2]int{{10, 20}, {100000, 101999}, {307000, 307200}}
	var specs []string
	for _, s := range spans {
		specs = append(specs, fmt.Sprintf("%d-%d", s[0], s[1]))
	}
	resp, body = get(t, url, "Range", "bytes="+strings.Join(specs, ","))
	checkParts(t, resp, body, data, spans)

	// The whole object; then it is a hit served locally.
	resp, body = get(t, url)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("whole object: %d, %d bytes", resp.StatusCode, len(body))
	}
	// The last chunk reaches the cache just after the answer that carried it.
	testnet.Wait(t, "object cached whole", func() bool {
		resp, _ := do(t, http.MethodHead, url)
		return resp.Header.Get("X-Cache") == "hit"
	})
	resp, body = get(t, url)
	if resp.Header.Get("x-cache") != "hit" || resp.Header.Get("x-data-source") != "local" || !bytes.Equal(body, data) {
		t.Fatalf("second whole read: x-cache %q x-data-source %q", resp.Header.Get("x-cache"), resp.Header.Get("x-data-source"))
	}
	for h, want := range map[string]string{
		"ETag":                        `"` + obj.ContentID + `"`,
		"Accept-Ranges":               "bytes",
		"Access-Control-Allow-Origin": "*",
		"Timing-Allow-Origin":         "*",
		"Content-Type":                "application/octet-stream",
		"Content-Length":              fmt.Sprint(len(data)),
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q", cc)
	}
	if ex := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(ex, "x-cache") || !strings.Contains(ex, "x-data-source") {
		t.Errorf("Access-Control-Expose-Headers = %q", ex)
	}
}

// Many clients reading ranges of one cached object at once get their own
// bytes: the block files the cache keeps open are never shared mid-read.
func TestConcurrentCachedRanges(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 200<<10+13)
	obj := e.put(t, data, 16<<10)
	url := e.d.AssetURL(obj.ID)
	if resp, body := get(t, url); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("whole read: %d", resp.StatusCode)
	}
	// The last chunk is written to the cache after the answer got it.
	cachedWhole(t, e, obj)
	var wg sync.WaitGroup
	bad := make(chan string, 16)
	for c := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			for range 20 {
				a := rng.IntN(len(data))
				b := a + rng.IntN(min(len(data)-a, 60<<10))
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", a, b))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					bad <- err.Error()
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 206 || resp.Header.Get("x-cache") != "hit" || !bytes.Equal(got, data[a:b+1]) {
					bad <- fmt.Sprintf("range %d-%d: %d, x-cache %q, match %v", a, b, resp.StatusCode, resp.Header.Get("x-cache"), bytes.Equal(got, data[a:b+1]))
					return
				}
			}
		})
	}
	wg.Wait()
	close(bad)
	for s := range bad {
		t.Fatal(s)
	}
}
