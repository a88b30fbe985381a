package distributor_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// The Content-Type sniff fetches only for answers that send bytes: a
// range answered 416 fetches nothing, a HEAD at most the first chunk (the
// type it names is the GET's) and nothing once the type is known, and a far range of
// an object whose first leaf cannot be had is served, typed
// application/octet-stream, rather than failed.
func TestSniffFetchesOnlyForBytesSent(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	srv := e.d.Server()
	// The bytes fetched once no fetch runs.
	fetched := func() float64 {
		testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
		return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	}
	pdf := func(n int) []byte {
		b := randomBytes(t, n)
		copy(b, "%PDF-1.7\n")
		return b
	}

	// 416: no fetch, not even the root.
	many := pdf(8 * chunk)
	obj := e.put(t, many, chunk)
	before := fetched()
	for _, rg := range []string{fmt.Sprintf("bytes=%d-", len(many)), "bytes=x-y", fmt.Sprintf("bytes=%d-%d,%d-", len(many)+5, len(many)+9, len(many))} {
		resp, _ := get(t, e.d.AssetURL(obj.ID), "Range", rg)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("Range %s of a %d-byte object: %d, want 416", rg, len(many), resp.StatusCode)
		}
	}
	if d := fetched() - before; d != 0 {
		t.Fatalf("unsatisfiable ranges fetched %.0f bytes", d)
	}
	// Whatever the Range, If-Range not matching sends the whole object.
	if resp, body := get(t, e.d.AssetURL(obj.ID), "Range", "bytes=x-y", "If-Range", `"other"`); resp.StatusCode != http.StatusOK || !bytes.Equal(body, many) {
		t.Fatalf("a bad range with If-Range not matching: %d, %d bytes", resp.StatusCode, len(body))
	}

	// HEAD of an object whose root is a raw block: the block fetched (it
	// is the first chunk the sniff needs), the type the GET will name.
	one := pdf(chunk / 2)
	raw := e.put(t, one, chunk)
	before = fetched()
	resp, _ := do(t, http.MethodHead, e.d.AssetURL(raw.ID))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(one)) || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("HEAD of an object never read: %d, length %q, type %q; want 200, %d, application/pdf",
			resp.StatusCode, resp.Header.Get("Content-Length"), resp.Header.Get("Content-Type"), len(one))
	}
	if d := fetched() - before; d > float64(len(one)) {
		t.Fatalf("a HEAD fetched %.0f bytes, more than the object's one block of %d", d, len(one))
	}
	if resp, body := get(t, e.d.AssetURL(raw.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, one) || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("GET: %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	before = fetched()
	if resp, _ := do(t, http.MethodHead, e.d.AssetURL(raw.ID)); resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("HEAD after a GET sniffed the type: %q, want application/pdf", resp.Header.Get("Content-Type"))
	}
	if d := fetched() - before; d != 0 {
		t.Fatalf("a HEAD of an object whose type is known fetched %.0f bytes", d)
	}

	// A far range of an object whose first leaf is lost: served untyped.
	lost := pdf(8 * chunk)
	obj = e.put(t, lost, chunk)
	p := e.net.Provider(0)
	m, ok, err := p.Store().Manifest(uint64(obj.ID))
	if err != nil || !ok {
		t.Fatalf("manifest: %v %v", ok, err)
	}
	if err := p.Store().Delete(m.Chunks[0].CID); err != nil {
		t.Fatal(err)
	}
	off := 5*chunk + 100
	resp, body := get(t, e.d.AssetURL(obj.ID), "Range", fmt.Sprintf("bytes=%d-%d", off, off+99))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, lost[off:off+100]) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("far range of an object whose first leaf is lost: %d, type %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	// The first bytes themselves cannot be served.
	if resp, _ := get(t, e.d.AssetURL(obj.ID), "Range", "bytes=0-99"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the lost first leaf's range: %d, want 503", resp.StatusCode)
	}
}
