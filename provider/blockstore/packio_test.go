package blockstore

// The fdatasync a pack's writers share (groupSync), with a fake sync that
// blocks until the test lets it finish.

import (
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSync is a sync that announces each call on calls and returns what the
// test sends back.
type fakeSync struct {
	calls chan chan error
	n     atomic.Int32
}

func newFakeSync() *fakeSync { return &fakeSync{calls: make(chan chan error)} }

// next returns the next sync call, failing the test if none comes.
func (f *fakeSync) next(t *testing.T) chan error {
	t.Helper()
	select {
	case r := <-f.calls:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no sync started")
		return nil
	}
}

func (f *fakeSync) sync() error {
	f.n.Add(1)
	r := make(chan error)
	f.calls <- r
	return <-r
}

// TestGroupSyncWaitsForNextGeneration: a writer that arrives while a sync
// is under way (which may have begun before its write finished) returns
// only after a sync that began after it, not the one under way.
func TestGroupSyncWaitsForNextGeneration(t *testing.T) {
	var g groupSync
	g.init()
	f := newFakeSync()
	first := make(chan error, 1)
	go func() { first <- g.do(f.sync) }()
	sync1 := f.next(t) // the first writer's sync is under way

	second := make(chan error, 1)
	go func() { second <- g.do(f.sync) }()
	waitBlockedIn(t, "(*groupSync).do", "sync.(*Cond).Wait", 1)
	sync1 <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		t.Fatalf("the second writer returned (%v) after a sync that began before it arrived", err)
	case sync2 := <-f.calls:
		sync2 <- nil
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n := f.n.Load(); n != 2 {
		t.Fatalf("%d syncs, want 2", n)
	}
}

// TestGroupSyncSharesOneSync: writers that arrive while a sync is under way
// share the one sync after it.
func TestGroupSyncSharesOneSync(t *testing.T) {
	var g groupSync
	g.init()
	f := newFakeSync()
	first := make(chan error, 1)
	go func() { first <- g.do(f.sync) }()
	sync1 := f.next(t)
	const waiters = 4
	rest := make(chan error, waiters)
	for range waiters {
		go func() { rest <- g.do(f.sync) }()
	}
	waitBlockedIn(t, "(*groupSync).do", "sync.(*Cond).Wait", waiters)
	sync1 <- nil
	sync2 := f.next(t)
	sync2 <- nil
	for range waiters {
		if err := <-rest; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := f.n.Load(); n != 2 {
		t.Fatalf("%d syncs for %d writers arriving during one, want 2", n, waiters+1)
	}
}

// TestGroupSyncErrorIsSticky: once a sync fails, every later writer gets
// its error without another sync (the pack may have lost pages: it takes
// no more writes).
func TestGroupSyncErrorIsSticky(t *testing.T) {
	var g groupSync
	g.init()
	f := newFakeSync()
	done := make(chan error, 1)
	go func() { done <- g.do(f.sync) }()
	f.next(t) <- syscall.EIO
	if err := <-done; !errors.Is(err, syscall.EIO) {
		t.Fatalf("do with a failing sync: %v, want EIO", err)
	}
	if err := g.do(f.sync); !errors.Is(err, syscall.EIO) {
		t.Fatalf("do after a failed sync: %v, want EIO", err)
	}
	if err := g.failed(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("failed() = %v, want EIO", err)
	}
	if n := f.n.Load(); n != 1 {
		t.Fatalf("%d syncs, want 1: none after the failure", n)
	}
}
