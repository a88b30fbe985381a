package blockstore

// Deletions free their records outside the gc lock.

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
)

// TestDeleteHeaderReadHoldsUpNoPut: a deletion whose header read (before
// punching the record) is stuck at the disk holds up no Put; once the read
// returns, the deletion punches the record and returns, and Close, which
// waits for it, closes cleanly.
func TestDeleteHeaderReadHoldsUpNoPut(t *testing.T) {
	var armed atomic.Bool
	entered := make(chan int64, 1)
	unstick := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unstick) }) }
	hook := func(read func() (int, error), f *os.File, at int64) (int, error) {
		if armed.CompareAndSwap(true, false) {
			entered <- at
			<-unstick
		}
		return read()
	}
	dir := t.TempDir()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackRead(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	defer release() // on a failure too: the read must end before Close
	keep := randBytes(130, 70_000)
	ck := putBlock(t, s, keep)
	gone := putBlock(t, s, randBytes(131, 70_000))
	rec := record(t, s, gone)

	armed.Store(true) // Put reads no pack: the next read is the deletion's
	deleted := make(chan error, 1)
	go func() { deleted <- s.Delete(gone) }()
	select {
	case at := <-entered:
		if at != rec.off {
			t.Fatalf("the deletion read at %d, want the header of its record at %d", at, rec.off)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the deletion never read the record's header")
	}

	more := randBytes(132, 70_000)
	put := make(chan error, 1)
	go func() { put <- s.Put(chunker.ChunkCID(more), more) }()
	select {
	case err := <-put:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a Put was held up by a deletion's header read stuck at the disk")
	}
	select {
	case err := <-deleted:
		t.Fatalf("the deletion returned (%v) before its header read did", err)
	default:
	}
	if ok, _ := s.Has(gone); ok {
		t.Fatal("the block deleted is still held while its record is being freed")
	}

	release()
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	checkNoRecord(t, s, gone)
	checkGet(t, s, ck, keep)
	checkGet(t, s, chunker.ChunkCID(more), more)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/" + cleanMarker); err != nil {
		t.Fatalf("no clean marker after Close: %v", err)
	}
}
