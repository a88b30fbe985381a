package distributor

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// pacedConn is a client connection that takes every write after d: a
// client reading just fast enough that no single write blocks for long.
type pacedConn struct {
	h http.Header
	d time.Duration
}

func (c *pacedConn) Header() http.Header { return c.h }

func (c *pacedConn) WriteHeader(int) {}

func (c *pacedConn) Write(p []byte) (int, error) {
	time.Sleep(c.d) // the client's pace, not a wait for an event
	return len(p), nil
}

// An answer gives its miss slot back once it has spent stallAfter blocked
// writing since its last fetch, however short each write: a client cannot
// hold a slot by reading just fast enough. An answer that fetches between
// such writes (its client keeps up with the providers) keeps it.
func TestStallCountsWriteTimeSinceLastFetch(t *testing.T) {
	const write = 100 * time.Millisecond // a tenth of stallAfter
	s := &Server{misses: make(chan struct{}, 1), parked: make(chan struct{}, 1), shares: newMissShares(1, 0)}
	s.m = newMetrics(nil, s)
	newAnswer := func() (*missSlot, *deadlineWriter, *atomic.Int32) {
		slot := s.newMissSlot(httptest.NewRequest(http.MethodGet, "/", nil))
		t.Cleanup(slot.release)
		if err := slot.take(); err != nil {
			t.Fatal(err)
		}
		var stalls atomic.Int32
		conn := &pacedConn{h: http.Header{}, d: write}
		dw := s.newWriter(conn, slot, func() { stalls.Add(1); slot.park() }, true)
		t.Cleanup(dw.close)
		return slot, dw, &stalls
	}

	// Fetching every two writes (a fifth of stallAfter): never parked.
	slot, dw, stalls := newAnswer()
	for i := range 20 {
		if i%2 == 0 {
			slot.fetches.Add(1)
		}
		if _, err := dw.Write(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := stalls.Load(); n != 0 || !slot.holds() {
		t.Fatalf("an answer fetching every %v of writing: %d stalls, slot held %v; want none and held", 2*write, n, slot.holds())
	}
	slot.release()

	// No fetch: parked once the writes add up to stallAfter.
	slot, dw, stalls = newAnswer()
	for i := 0; slot.holds(); i++ {
		if i == 4*int(stallAfter/write) {
			t.Fatalf("%d writes of %v with no fetch, still holding the slot", i, write)
		}
		if _, err := dw.Write(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := stalls.Load(); n != 1 {
		t.Fatalf("%d stalls; want 1", n)
	}
}
