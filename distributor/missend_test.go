package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// errBroken is the error of a write to a connection that broke.
var errBroken = errors.New("connection broken")

// gatedConn is an answer's connection the test steers: each Write waits
// until the test lets it through (pass) or breaks the connection (fail).
// It stands for a socket because the fault it makes, a write failing (a
// write timeout, a reset) at the moment the answer's reader waits for a
// miss slot, hangs on socket buffer sizes over a real connection.
type gatedConn struct {
	h       http.Header
	entered chan []byte // each Write's bytes, once it waits
	pass    chan struct{}
	failed  chan struct{} // closed: every Write fails
	once    sync.Once
}

func newGatedConn() *gatedConn {
	return &gatedConn{h: http.Header{}, entered: make(chan []byte), pass: make(chan struct{}), failed: make(chan struct{})}
}

func (c *gatedConn) Header() http.Header { return c.h }

func (c *gatedConn) WriteHeader(int) {}

func (c *gatedConn) SetWriteDeadline(time.Time) error { return nil }

func (c *gatedConn) Write(p []byte) (int, error) {
	select {
	case c.entered <- slices.Clone(p):
	case <-c.failed:
		return 0, errBroken
	}
	select {
	case <-c.pass:
		return len(p), nil
	case <-c.failed:
		return 0, errBroken
	}
}

func (c *gatedConn) fail() { c.once.Do(func() { close(c.failed) }) }

// next returns the bytes of the next Write, which waits.
func (c *gatedConn) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-c.entered:
		return p
	case <-time.After(testnet.WaitTimeout):
		t.Fatalf("no write to the client within %v", testnet.WaitTimeout)
		return nil
	}
}

// A multi-range answer reads its parts in a goroutine of http.ServeContent
// that outlives it. When that read waits for a --max-misses slot (its
// object evicted mid-answer, every slot held) and the answer ends — its
// connection breaks while the request goes on, or the client leaves — the
// read returns, taking no slot and fetching nothing, and the handler
// returns: its reader's Close does not wait for a slot to free.
func TestAnswerEndFreesSlotWait(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxMisses(1))
	srv := e.d.Server()
	h := srv.Handler()
	reg := e.d.Registry()
	fetched := func() float64 { return counter(t, reg, "satchel_distributor_fetched_bytes_total") }
	waiting := func() float64 { return gauge(t, reg, "satchel_distributor_miss_waiting_requests") }
	for _, tc := range []struct {
		name  string
		leave bool // the client leaves (its request's context ends) as the write fails
	}{{"write fails", false}, {"client leaves", true}} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(t, 8*chunk)
			obj := e.put(t, data, chunk)
			cachedWhole(t, e, obj) // the answer starts as a hit: no slot
			testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
			before := fetched()
			release := sync.OnceFunc(srv.HoldMissSlots())
			defer release()

			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, e.d.AssetURL(obj.ID), nil)
			far := 5*chunk + 10 // in leaf 5, read only after leaf 0
			req.Header.Set("Range", fmt.Sprintf("bytes=0-99,%d-%d", far, far+99))
			conn := newGatedConn()
			defer conn.fail()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(conn, req)
			}()
			// The first part's bytes come from leaf 0's cached file; while
			// they are written, the part goroutine is at most at the next
			// part's header, short of leaf 5.
			passFirstPart(t, conn, data[:100])
			srv.EvictCached(obj.ID)
			conn.pass <- struct{}{}
			conn.next(t) // the second part's header, written while leaf 5 is read
			testnet.Wait(t, "the part goroutine waiting for a miss slot", func() bool { return waiting() == 1 })

			if tc.leave {
				cancel()
			}
			conn.fail()
			select {
			case <-done:
			case <-time.After(testnet.WaitTimeout):
				release()
				<-done
				t.Fatalf("the handler did not return within %v of its answer ending while its reader waited for a miss slot (it did once a slot freed)", testnet.WaitTimeout)
			}
			testnet.Wait(t, "the slot wait to end with the answer", func() bool { return waiting() == 0 })
			if n, got := srv.FetchesRunning(), fetched(); n != 0 || got != before {
				t.Fatalf("after the answer ended: %d fetches running, %.0f bytes fetched; want none", n, got-before)
			}
		})
	}
}

// TestAnswerEndFreesFetchWait: as TestAnswerEndFreesSlotWait, with the
// part read past its slot, waiting for a fetch (every --max-fetches slot
// held): when the answer's write fails while the request goes on, the
// read's wait ends with the answer and the handler returns, not once the
// fetch could go on.
func TestAnswerEndFreesFetchWait(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1)
	srv := e.d.Server()
	h := srv.Handler()
	data := randomBytes(t, 8*chunk)
	obj := e.put(t, data, chunk)
	cachedWhole(t, e, obj)
	testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
	req := httptest.NewRequestWithContext(e.ctx, http.MethodGet, e.d.AssetURL(obj.ID), nil)
	far := 5*chunk + 10
	req.Header.Set("Range", fmt.Sprintf("bytes=0-99,%d-%d", far, far+99))
	conn := newGatedConn()
	defer conn.fail()
	done := make(chan struct{})
	go func() { defer close(done); h.ServeHTTP(conn, req) }()
	passFirstPart(t, conn, data[:100])
	srv.EvictCached(obj.ID)
	release := sync.OnceFunc(srv.HoldFetchSlots())
	defer release()
	conn.pass <- struct{}{}
	conn.next(t)
	testnet.Wait(t, "the part's fetch waiting", func() bool { return srv.FetchesRunning() >= 1 })
	conn.fail()
	select {
	case <-done:
	case <-time.After(testnet.WaitTimeout):
		release()
		<-done
		t.Fatalf("the handler did not return within %v of its write failing while its reader waited for a fetch", testnet.WaitTimeout)
	}
}

// TestHeadOfKnownTypeTakesNoSlot: a HEAD of an uncached object reads
// nothing, so it does not wait for a --max-misses slot: it answers at once,
// with the type a GET sniffed, while every slot is held.
func TestHeadOfKnownTypeTakesNoSlot(t *testing.T) {
	const chunk = 64 << 10
	e := newEnv(t, 1, distributor.WithMaxMisses(1), distributor.WithMaxCachedObject(0))
	data := randomBytes(t, 8*chunk)
	copy(data, "%PDF-1.7\n")
	obj := e.put(t, data, chunk)
	if resp, _ := get(t, e.d.AssetURL(obj.ID), "Range", "bytes=0-99"); resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("first GET: type %q; want application/pdf", resp.Header.Get("Content-Type"))
	}
	srv := e.d.Server()
	testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
	before := counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	release := srv.HoldMissSlots()
	defer release()
	ctx, cancel := context.WithTimeout(e.ctx, testnet.WaitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, e.d.AssetURL(obj.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HEAD of an object of known type with every miss slot held: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("HEAD: %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if d := counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total") - before; d != 0 {
		t.Fatalf("a HEAD of known type fetched %.0f bytes", d)
	}
}

// passFirstPart lets an answer's writes through until first, its first
// part's bytes, went out.
func passFirstPart(t *testing.T, conn *gatedConn, first []byte) {
	t.Helper()
	var sent []byte
	for {
		sent = append(sent, conn.next(t)...)
		if bytes.Contains(sent, first) {
			return
		}
		conn.pass <- struct{}{}
	}
}
