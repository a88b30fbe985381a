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
			release := srv.HoldMissSlots()
			released := false
			defer func() {
				if !released {
					release()
				}
			}()

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
			var sent []byte
			for {
				sent = append(sent, conn.next(t)...)
				if bytes.Contains(sent, data[:100]) {
					break
				}
				conn.pass <- struct{}{}
			}
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
				released = true
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
