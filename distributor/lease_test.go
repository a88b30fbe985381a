package distributor_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
)

// Fetched leaves lie in pooled frame buffers that later fetches reuse.
// A request that stalls mid-object still holds the leaf it sends and the
// ones fetched ahead for it, while a second request for the same object
// reads it whole and others read other objects (whose leaves land in
// whatever buffers were handed back): when the stalled request goes on,
// every byte it gets is still its object's. The streamed path (the object
// is not cached), the cached one and a CAR answer are run.
func TestStalledReaderKeepsItsBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []distributor.Option
		query string
	}{
		{"streamed", []distributor.Option{distributor.WithMaxCachedObject(0)}, ""},
		{"cached", nil, ""},
		{"car", []distributor.Option{distributor.WithMaxCachedObject(0)}, "?format=car"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const chunk, size = 1 << 20, 8 << 20
			// The stalled reader must not be cut off for reading nothing
			// while the others read, however slow the machine.
			e := newEnv(t, 1, append(tc.opts, distributor.WithWriteTimeout(2*time.Minute))...)
			x := randomBytes(t, size)
			objX := e.put(t, x, chunk)
			others := make([][]byte, 2)
			var urls []string
			for i := range others {
				others[i] = randomBytes(t, size)
				urls = append(urls, e.d.AssetURL(e.put(t, others[i], chunk).ID))
			}
			urlX := e.d.AssetURL(objX.ID) + tc.query
			body := stallThenRead(t, urlX, func() {
				// B reads X whole meanwhile, sharing A's fetches; then
				// the other objects are read, twice over, at once.
				if _, b := get(t, urlX); !bytes.Equal(content(t, b, tc.query != ""), x) {
					t.Errorf("a second reader of X got %d bytes, not X", len(b))
				}
				readConcurrently(t, urls, others)
			})
			got := content(t, body, tc.query != "")
			if !bytes.Equal(got, x) {
				at := 0
				for at < min(len(got), len(x)) && got[at] == x[at] {
					at++
				}
				t.Fatalf("the stalled reader got %d bytes of content differing from X's %d at byte %d", len(got), len(x), at)
			}
		})
	}
}

// stallThenRead GETs url with a client of its own, reads the first 64 KiB
// of the body and stops reading (the node's writes to it block once the
// socket buffers are full) while meanwhile runs; then it reads the rest
// and returns the whole body.
func stallThenRead(t *testing.T, url string, meanwhile func()) []byte {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") == "hit" {
		t.Fatalf("first request: status %d, X-Cache %q; want 200, not a hit", resp.StatusCode, resp.Header.Get("X-Cache"))
	}
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	meanwhile()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, rest...)
}

// readConcurrently GETs every url twice, all at once, and checks each body
// against want.
func readConcurrently(t *testing.T, urls []string, want [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(urls))
	for range 2 {
		for i, u := range urls {
			wg.Go(func() {
				r, err := http.Get(u)
				if err != nil {
					errs <- err
					return
				}
				defer r.Body.Close()
				b, err := io.ReadAll(r.Body)
				if err == nil && !bytes.Equal(b, want[i]) {
					err = fmt.Errorf("%s: %d bytes that are not its object's", u, len(b))
				}
				if err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// content returns body, or for a CAR the content its leaves hold.
func content(t *testing.T, body []byte, car bool) []byte {
	t.Helper()
	if !car {
		return body
	}
	_, data, _ := carContent(t, body)
	return data
}

// carContent checks a CARv1 body: every block verifies against its CID. It
// returns the first block's CID, the content of the raw leaves in order and
// the last leaf's CID.
func carContent(t *testing.T, body []byte) (first cid.Cid, data []byte, leaf cid.Cid) {
	t.Helper()
	r := bytes.NewReader(body)
	hl, err := binary.ReadUvarint(r)
	if err != nil || hl > 1<<10 {
		t.Fatalf("car header length %d: %v", hl, err)
	}
	if _, err := r.Seek(int64(hl), io.SeekCurrent); err != nil {
		t.Fatal(err)
	}
	for r.Len() > 0 {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			t.Fatalf("car section of %d bytes with %d left: %v", n, r.Len(), err)
		}
		sec := make([]byte, n)
		if _, err := io.ReadFull(r, sec); err != nil {
			t.Fatal(err)
		}
		cl, c, err := cid.CidFromBytes(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := chunker.VerifyChunk(c, sec[cl:]); err != nil {
			t.Fatalf("car block %s: %v", c, err)
		}
		if !first.Defined() {
			first = c
		}
		if c.Type() == cid.Raw {
			data = append(data, sec[cl:]...)
			leaf = c
		}
	}
	return first, data, leaf
}
