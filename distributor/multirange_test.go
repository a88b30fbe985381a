package distributor_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// oneByteRanges returns a Range header asking for byte 7 of each of the
// chunks given, in that order, and those ranges.
func oneByteRanges(chunk int, chunks ...int) (string, [][2]int) {
	specs := make([]string, len(chunks))
	spans := make([][2]int, len(chunks))
	for i, c := range chunks {
		spans[i] = [2]int{c*chunk + 7, c*chunk + 7}
		specs[i] = fmt.Sprintf("%d-%d", spans[i][0], spans[i][1])
	}
	return "bytes=" + strings.Join(specs, ","), spans
}

// checkParts fails t unless body is a multipart/byteranges answer carrying
// spans of data, in order.
func checkParts(t *testing.T, resp *http.Response, body, data []byte, spans [][2]int) {
	t.Helper()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("multi-range: %d, want 206", resp.StatusCode)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("multi-range content type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, s := range spans {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		got, _ := io.ReadAll(p)
		if !bytes.Equal(got, data[s[0]:s[1]+1]) {
			t.Fatalf("part %d (%d-%d) differs", i, s[0], s[1])
		}
		if cr := p.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", s[0], s[1], len(data)) {
			t.Errorf("part %d Content-Range %q", i, cr)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("more parts than the %d ranges: %v", len(spans), err)
	}
}

// A multi-range GET of MaxRanges one-byte ranges, one in each of MaxRanges
// chunks of an object too large to cache, would fetch (and verify) every
// one of those chunks to send a few kilobytes — the chunk size (1 MiB by
// default) times MaxRanges, 64 MiB, per request, and the same again on the
// next. Ranges that would read more than 8 chunks they do not send whole
// are ignored: the whole object is sent, 200, fetched as the client reads
// it, so what is fetched stays what is sent.
func TestMultiRangeFetchBounded(t *testing.T) {
	const chunk = 64 << 10
	const chunks = distributor.MaxRanges
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	data := randomBytes(t, chunks*chunk)
	obj := e.put(t, data, chunk)
	srv := e.d.Server()
	fetched := func() float64 {
		testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
		return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	}
	all := make([]int, chunks)
	for i := range all {
		all[i] = i
	}
	rg, _ := oneByteRanges(chunk, all...)
	before := fetched()
	sent := 0
	const rounds = 3
	for range rounds {
		resp, body := get(t, e.d.AssetURL(obj.ID), "Range", rg)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("%d one-byte ranges in as many chunks: %d, %d bytes; want 200 and the whole object", chunks, resp.StatusCode, len(body))
		}
		sent += len(body)
	}
	got := fetched() - before
	t.Logf("%d requests of %d one-byte ranges (a %d-byte header): %d bytes sent, %.0f fetched from providers (%.2f×)",
		rounds, chunks, len(rg), sent, got, got/float64(sent))
	if got > 1.1*float64(sent) {
		t.Errorf("range answers fetched %.0f bytes to send %d", got, sent)
	}
	if n := counter(t, e.d.Registry(), "satchel_distributor_ranges_ignored_total"); n != rounds {
		t.Errorf("ranges_ignored_total = %v, want %d", n, rounds)
	}
	// Preconditions that hold change nothing.
	etag := `"` + obj.ContentID + `"`
	resp, body := get(t, e.d.AssetURL(obj.ID), "Range", rg, "If-Match", etag, "If-Range", etag)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("with If-Match and If-Range naming the object: %d, %d bytes; want 200 and the whole object", resp.StatusCode, len(body))
	}
}

// Up to 8 chunks read without being sent whole, a multi-range answer is a
// multipart 206 that fetches those chunks and nothing between them (no
// read-ahead across the gaps); a ninth makes it the whole object. Ranges
// that share chunks count each chunk once, and chunks a range sends whole
// do not count.
func TestMultiRangeWithinBound(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	data := randomBytes(t, 64*chunk)
	obj := e.put(t, data, chunk)
	url := e.d.AssetURL(obj.ID)
	srv := e.d.Server()
	fetched := func() float64 {
		testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
		return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	}
	// The type sniffed first (chunk 0, the root node), out of the count.
	if resp, _ := get(t, url, "Range", "bytes=0-0"); resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("first byte: %d", resp.StatusCode)
	}
	before := fetched()
	rg, spans := oneByteRanges(chunk, 0, 8, 16, 24, 32, 40, 48, 56)
	resp, body := get(t, url, "Range", rg)
	checkParts(t, resp, body, data, spans)
	if d := fetched() - before; d != 8*chunk {
		t.Errorf("8 one-byte ranges in 8 chunks fetched %.0f bytes, want those 8 chunks (%d)", d, 8*chunk)
	}

	// 64 ranges in 4 chunks, each chunk's in a row: 4 chunks read.
	var many []int
	for c := range 4 {
		for range 16 {
			many = append(many, 10*c+1)
		}
	}
	rg, spans = oneByteRanges(chunk, many...)
	resp, body = get(t, url, "Range", rg)
	checkParts(t, resp, body, data, spans)

	// Long ranges send the chunks inside them whole: 10 chunks in all,
	// 2 not whole (a range's first and last chunk are, here).
	rg = fmt.Sprintf("bytes=%d-%d,%d-%d", 2*chunk+5, 7*chunk-1, 20*chunk, 25*chunk+5)
	resp, body = get(t, url, "Range", rg)
	checkParts(t, resp, body, data, [][2]int{{2*chunk + 5, 7*chunk - 1}, {20 * chunk, 25*chunk + 5}})

	// A ninth chunk: the whole object.
	rg, _ = oneByteRanges(chunk, 0, 8, 16, 24, 32, 40, 48, 56, 60)
	resp, body = get(t, url, "Range", rg)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("9 one-byte ranges in 9 chunks: %d, %d bytes; want 200 and the whole object", resp.StatusCode, len(body))
	}
	// Back and forth between two chunks: every return reads one again.
	rg, _ = oneByteRanges(chunk, 1, 2, 1, 2, 1, 2, 1, 2, 1)
	if resp, _ := get(t, url, "Range", rg); resp.StatusCode != http.StatusOK {
		t.Fatalf("9 ranges alternating between 2 chunks of an object not cached: %d, want 200", resp.StatusCode)
	}
}

// Chunks in the cache cost no fetch: a cached object answers any
// multi-range request within MaxRanges as ranges.
func TestMultiRangeCached(t *testing.T) {
	const chunk = 16 << 10
	e := newEnv(t, 1)
	data := randomBytes(t, distributor.MaxRanges*chunk)
	obj := e.put(t, data, chunk)
	url := e.d.AssetURL(obj.ID)
	if resp, body := get(t, url); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("whole object: %d", resp.StatusCode)
	}
	testnet.Wait(t, "object cached whole", func() bool {
		resp, _ := do(t, http.MethodHead, url)
		return resp.Header.Get("X-Cache") == "hit"
	})
	all := make([]int, distributor.MaxRanges)
	for i := range all {
		all[i] = len(all) - 1 - i
	}
	rg, spans := oneByteRanges(chunk, all...)
	resp, body := get(t, url, "Range", rg)
	checkParts(t, resp, body, data, spans)
}
