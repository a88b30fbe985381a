package distributor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// CAR and raw block answers that need blocks from the providers take the
// --max-misses slots asset misses take: while every slot is held they wait,
// fetching and holding nothing, until the client gives up or a slot frees.
func TestCARAndBlockMissesTakeSlots(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0), distributor.WithMaxMisses(2))
	data := randomBytes(t, 256<<10)
	obj := e.put(t, data, 64<<10)
	carURL := e.d.AssetURL(obj.ID) + "?format=car"
	_, body := get(t, carURL)
	_, _, leaf := carContent(t, body)
	srv := e.d.Server()
	testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
	fetched := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total") }
	before := fetched()

	release := srv.HoldMissSlots()
	for _, url := range []string{carURL, e.d.AssetURL(obj.ID) + "/blocks/" + leaf.String()} {
		waitsForSlot(t, e, url)
		if n, got := srv.FetchesRunning(), fetched(); n != 0 || got != before {
			t.Fatalf("%s waiting for a slot: %d fetches running, %.0f bytes fetched (was %.0f); want none", url, n, got, before)
		}
	}
	release()
	resp, body := get(t, carURL)
	if _, got, _ := carContent(t, body); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("CAR once a slot is free: status %d, content equal %v", resp.StatusCode, bytes.Equal(got, data))
	}
	if fetched() <= before {
		t.Fatal("the CAR of an uncached object fetched nothing once a slot was free")
	}
}

// waitsForSlot GETs url and checks that the answer waits for a miss slot
// (and does not come); then the client gives up and the wait ends.
func waitsForSlot(t *testing.T, e *env, url string) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waiting := func() float64 { return gauge(t, e.d.Registry(), "satchel_distributor_miss_waiting_requests") }
	testnet.Wait(t, url+" waiting for a miss slot", func() bool {
		select {
		case code := <-done:
			t.Fatalf("%s answered %d with every miss slot taken; want it to wait", url, code)
		default:
		}
		return waiting() == 1
	})
	cancel()
	<-done
	testnet.Wait(t, "the wait to end with the client", func() bool { return waiting() == 0 })
}

// CAR and raw block answers wholly from the cache take no miss slot: with
// every slot held they are answered, from the block files.
func TestCachedCARAndBlockTakeNoSlot(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxMisses(1))
	data := randomBytes(t, 256<<10)
	obj := e.put(t, data, 64<<10)
	files := cachedWhole(t, e, obj)
	defer e.d.Server().HoldMissSlots()()
	resp, body := get(t, e.d.AssetURL(obj.ID)+"?format=car")
	_, got, leaf := carContent(t, body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("cached CAR with every miss slot held: status %d, content equal %v", resp.StatusCode, bytes.Equal(got, data))
	}
	want, err := distributor.ReadBlockFile(files[leaf])
	if err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, e.d.AssetURL(obj.ID)+"/blocks/"+leaf.String())
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) || resp.Header.Get("Content-Length") != fmt.Sprint(len(want)) {
		t.Fatalf("cached raw block with every miss slot held: status %d, %d bytes (Content-Length %s), equal %v",
			resp.StatusCode, len(body), resp.Header.Get("Content-Length"), bytes.Equal(body, want))
	}
	// A HEAD names the block's size and type from its file, reading none
	// of it: the GET after it (the same file, kept open) sends it whole.
	resp, body = do(t, http.MethodHead, e.d.AssetURL(obj.ID)+"/blocks/"+leaf.String())
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(len(want)) ||
		resp.Header.Get("Content-Type") != "application/vnd.ipld.raw" || resp.Header.Get("ETag") != `"`+leaf.String()+`.raw"` {
		t.Fatalf("HEAD of a cached raw block: status %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	resp, body = get(t, e.d.AssetURL(obj.ID)+"/blocks/"+leaf.String())
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("cached raw block after a HEAD: status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, want))
	}
}

// slowClient is an HTTP client whose connections take in at most about
// 0.5 MiB the test has not read: a client that stops reading stops the
// answer in the server (whose send buffer holds at most 4 MiB). Not less:
// a receive buffer under two segments of loopback's 64 KiB MSS stalls the
// connection.
func slowClient(t *testing.T) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// answerPastSendBuffer returns an object size far more than a loopback
// connection's send buffer can hold (four times the system's tcp_wmem
// maximum, at least 16 MiB), so an answer to a client that stops reading
// stops in the server; it skips the test where that would pass 64 MiB.
func answerPastSendBuffer(t *testing.T) int {
	t.Helper()
	size := 16 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if wmem, err := strconv.Atoi(f[2]); err == nil {
				size = max(size, 4*wmem)
			}
		}
	}
	if size > 64<<20 {
		t.Skipf("tcp_wmem lets a connection buffer %d MiB: an answer would not stop in the server", (size/4)>>20)
	}
	return size
}

// An answer that started wholly from the cache (no miss slot) and finds
// its object evicted mid-answer fetches the rest only once it holds a
// --max-misses slot: with every slot held it waits, fetching nothing, and
// once one frees it finishes whole. Asset answers and CARs alike.
func TestEvictedMidAnswerTakesSlot(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxMisses(1))
	client := slowClient(t)
	for _, tc := range []struct {
		name, query string
		content     func([]byte) []byte
	}{
		{"asset", "", func(b []byte) []byte { return b }},
		{"car", "?format=car", func(b []byte) []byte { _, c, _ := carContent(t, b); return c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An object of its own, every block cached (after an
			// eviction an answer fetches only the blocks it reads).
			data := randomBytes(t, answerPastSendBuffer(t))
			obj := e.put(t, data, 1<<20)
			cachedWhole(t, e, obj)
			srv := e.d.Server()
			testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
			reg := e.d.Registry()
			fetched := func() float64 { return counter(t, reg, "satchel_distributor_fetched_bytes_total") }
			waiting := func() float64 { return gauge(t, reg, "satchel_distributor_miss_waiting_requests") }
			before := fetched()

			// Every slot held from here: the answer starts from the
			// cache, which needs none.
			release := srv.HoldMissSlots()
			held := true
			defer func() {
				if held {
					release()
				}
			}()
			req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, e.d.AssetURL(obj.ID)+tc.query, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			head := make([]byte, 64<<10)
			if _, err := io.ReadFull(resp.Body, head); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, first bytes: %v", resp.StatusCode, err)
			}
			srv.EvictCached(obj.ID) // while the answer is stopped mid-way by its client
			rest := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(resp.Body)
				rest <- b
			}()
			testnet.Wait(t, "the rest of the answer waiting for a miss slot", func() bool {
				select {
				case b := <-rest:
					t.Fatalf("the rest of the answer (%d bytes) came with every miss slot held; %.0f bytes fetched meanwhile", len(b), fetched()-before)
				default:
				}
				return waiting() == 1
			})
			if got := fetched(); got != before {
				t.Fatalf("%.0f bytes fetched while waiting for a slot; want none", got-before)
			}
			release()
			held = false
			var body []byte
			select {
			case b := <-rest:
				body = append(head, b...)
			case <-time.After(testnet.WaitTimeout):
				t.Fatalf("the rest of the answer did not come within %v of a slot freeing", testnet.WaitTimeout)
			}
			if got := tc.content(body); !bytes.Equal(got, data) {
				t.Fatalf("answer of %d bytes once a slot freed: content equal %v", len(body), bytes.Equal(got, data))
			}
			if fetched() <= before {
				t.Fatal("the rest of the evicted object was not fetched")
			}
		})
	}
}

// A raw block answer whose check that the block is part of the object
// needs interior nodes from the providers takes a --max-misses slot before
// fetching them: with every slot held it waits, fetching nothing.
func TestBlockLookupTakesSlot(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxMisses(1))
	const chunk = 64 << 10
	data := randomBytes(t, 4*chunk)
	obj := e.put(t, data, chunk)
	sum, err := mh.Sum(data[chunk:2*chunk], mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cid.NewCidV1(cid.Raw, sum) // the second chunk
	// A restart forgets the decoded interior nodes, the eviction the
	// cached ones (the root was fetched when the object was accepted).
	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	srv := e.d.Server()
	srv.EvictCached(obj.ID)
	fetched := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total") }
	url := e.d.AssetURL(obj.ID) + "/blocks/" + leaf.String()
	release := srv.HoldMissSlots()
	waitsForSlot(t, e, url)
	if n, got := srv.FetchesRunning(), fetched(); n != 0 || got != 0 {
		t.Fatalf("waiting for a slot: %d fetches running, %.0f bytes fetched; want none", n, got)
	}
	release()
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data[chunk:2*chunk]) {
		t.Fatalf("once a slot is free: status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, data[chunk:2*chunk]))
	}
}
