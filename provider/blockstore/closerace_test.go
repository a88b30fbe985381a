package blockstore

// Reads and writes racing Close: they fail with ErrClosed, and nothing is
// quarantined or half-written for it.

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
)

// TestReadOfClosedPackIsErrClosed: a read that acquired its pack before
// Close closed the files fails with ErrClosed, not as a missing pack (which
// readHeld quarantined).
func TestReadOfClosedPackIsErrClosed(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(90, 70_000)
	c := putBlock(t, s, data)
	rec := record(t, s, c)
	p, err := s.packs.acquire(rec.pack) // a reader in flight
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(data))
	if _, err := s.packs.readAt(p, buf, rec.off+hdrSize, len(data)); !errors.Is(err, ErrClosed) {
		t.Errorf("readAt of a pack closed under it: %v, want ErrClosed", err)
	}
	if _, err := s.packs.readRange(rec.pack, rec.off, 0, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("readRange after Close: %v, want ErrClosed", err)
	}
	s.packs.release(p)
}

// TestQuarantineAfterCloseLeavesBlock: a read that failed because Close
// came (and so asks for the block to be quarantined) leaves the block
// held, to be read again after the next Open.
func TestQuarantineAfterCloseLeavesBlock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	data := randBytes(91, 70_000)
	c := putBlock(t, s, data)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.quarantine(c, "pack or file missing"); !errors.Is(err, ErrClosed) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("quarantine after Close: %v, want ErrClosed and not ErrCorrupt", err)
	}
	s = openTest(t, dir)
	checkGet(t, s, c, data)
	if q, _ := s.Quarantined(); len(q) != 0 {
		t.Fatalf("quarantined %v", q)
	}
}

// TestCloseDuringGetsAndPuts: Gets and Puts running while the store closes
// either succeed or fail with ErrClosed; none reports a corrupt or missing
// block, and nothing is quarantined.
func TestCloseDuringGetsAndPuts(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	var held [][]byte
	for i := range 8 {
		data := randBytes(uint64(200+i), 20_000)
		putBlock(t, s, data)
		held = append(held, data)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	started := make(chan struct{}, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var err error
				if w%2 == 0 {
					d := held[(w+i)%len(held)]
					_, err = s.Get(chunker.ChunkCID(d))
				} else {
					d := randBytes(uint64(1000+w*100000+i), 8000)
					err = s.Put(chunker.ChunkCID(d), d)
				}
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						errs <- fmt.Errorf("worker %d: %w", w, err)
					}
					return
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s = openTest(t, dir)
	for _, d := range held {
		checkGet(t, s, chunker.ChunkCID(d), d)
	}
	if q, _ := s.Quarantined(); len(q) != 0 {
		t.Fatalf("quarantined %v", q)
	}
}

// TestPutWaitingForCloseIsErrClosed: a Put that reached the store while
// Close held it returns ErrClosed once Close is done, rather than write to
// a closed store.
func TestPutWaitingForCloseIsErrClosed(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(92, 20_000)
	s.gc.Lock() // Close's hold, which a Put racing it waits for
	res := make(chan error, 1)
	go func() { res <- s.Put(chunker.ChunkCID(data), data) }()
	waitBlockedIn(t, "(*Store).putVerified", "sync.(*RWMutex).RLock", 1)
	s.closed.Store(true) // Close marks the store closed before it takes gc
	s.gc.Unlock()
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("Put that waited for Close: %v, want ErrClosed", err)
	}
}

// waitBlockedIn waits until n goroutines are blocked in fn, on wait (a
// lock or condition's method).
func waitBlockedIn(t *testing.T, fn, wait string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		blocked := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, wait) {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("fewer than %d goroutines blocked in %s", n, fn)
}
