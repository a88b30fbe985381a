package blockstore

// Ranged reads racing deletions.

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// TestRangeReadStuckHoldsUpNothing: a range read stuck at the disk (held
// in its pack read, as a failing disk holds it) holds up neither a
// deletion of its block nor a Put after it; once the read returns, the
// record it read from is punched out and it gives ErrNotFound, not zeros.
func TestRangeReadStuckHoldsUpNothing(t *testing.T) {
	data := randBytes(120, 70_000)
	const off, n = 1000, 5000
	var armed atomic.Bool
	entered := make(chan struct{})
	unstick := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unstick) }) }
	hook := func(read func() (int, error), f *os.File, at int64) (int, error) {
		// The block's record is the first in its pack: the range read is
		// the one at hdrSize+off (Delete reads the header, at 0).
		if at == hdrSize+off && armed.CompareAndSwap(true, false) {
			close(entered)
			<-unstick
		}
		return read()
	}
	s, err := Open(t.TempDir(), WithSessionExpiry(0), WithLogger(discard), withPackRead(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	defer release() // on a failure too: the read must end before Close
	c := putBlock(t, s, data)
	if got := packOf(t, s, c); got != 1 {
		t.Fatalf("the block went in pack %d; the test expects the first record of pack 1", got)
	}

	armed.Store(true)
	type result struct {
		buf []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		buf, _, err := s.ReadRange(c, off, n)
		read <- result{buf, err}
	}()
	<-entered

	done := make(chan error, 1)
	go func() {
		if err := s.Delete(c); err != nil {
			done <- err
			return
		}
		other := randBytes(121, 70_000)
		done <- s.Put(chunker.ChunkCID(other), other)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a Delete and a Put were held up by a range read stuck at the disk")
	}
	release()
	if r := <-read; !errors.Is(r.err, ErrNotFound) {
		t.Fatalf("range read of a block deleted during it = %d bytes, %v; want ErrNotFound", len(r.buf), r.err)
	}
	checkNoRecord(t, s, c)
}

// TestRangeReadsRacingDeletes: range reads running while their blocks are
// deleted and new ones put return each block's own bytes or ErrNotFound,
// never zeros or another block's bytes; and some return bytes (the test
// proves nothing if every read finds its block gone).
func TestRangeReadsRacingDeletes(t *testing.T) {
	s := openTest(t, t.TempDir())
	const n = 64
	datas := make([][]byte, n)
	cs := make([]cid.Cid, n)
	for i := range datas {
		datas[i] = randBytes(uint64(130+i), 3*ioAlign)
		cs[i] = putBlock(t, s, datas[i])
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i = (i + 1) % n {
				select {
				case <-done:
					return
				default:
				}
				buf, _, err := s.ReadRange(cs[i], ioAlign/2, 2*ioAlign)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if string(buf) != string(datas[i][ioAlign/2:ioAlign/2+2*ioAlign]) {
					errs <- errors.New("a range read returned bytes that are not its block's")
					return
				}
				served.Add(1)
			}
		}()
	}
	// The readers are running before the first delete: on a loaded
	// machine the deletes could otherwise all finish before any read.
	for deadline := time.Now().Add(30 * time.Second); served.Load() < 4; {
		if time.Now().After(deadline) {
			t.Fatal("the range readers served nothing in 30 s")
		}
		runtime.Gosched()
	}
	for i := range cs {
		if err := s.Delete(cs[i]); err != nil {
			t.Fatal(err)
		}
		putBlock(t, s, randBytes(uint64(230+i), 3*ioAlign))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestRangeReadOfBlockPutAgainDuringIt: a range read held at the disk
// while its block is deleted and put again (a new record, further on in
// the pack) reads the block's new record once it returns: the block was
// held throughout, as far as the caller can tell.
func TestRangeReadOfBlockPutAgainDuringIt(t *testing.T) {
	data := randBytes(125, 70_000)
	const off, n = 1000, 5000
	var armed atomic.Bool
	entered := make(chan struct{})
	unstick := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unstick) }) }
	var reads atomic.Int32
	hook := func(read func() (int, error), f *os.File, at int64) (int, error) {
		if at%ioAlign == off%ioAlign {
			reads.Add(1) // a range read (records and headers are aligned)
		}
		if at == hdrSize+off && armed.CompareAndSwap(true, false) {
			close(entered)
			<-unstick
		}
		return read()
	}
	s, err := Open(t.TempDir(), WithSessionExpiry(0), WithLogger(discard), withPackRead(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	defer release() // on a failure too: the read must end before Close
	c := putBlock(t, s, data)
	if rec := record(t, s, c); !rec.packed || rec.off != 0 {
		t.Fatalf("the block's record is at %d; the test expects the first record of its pack", rec.off)
	}

	armed.Store(true)
	type result struct {
		buf  []byte
		size uint64
		err  error
	}
	read := make(chan result, 1)
	go func() {
		buf, size, err := s.ReadRange(c, off, n)
		read <- result{buf, size, err}
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the range read never reached the disk")
	}
	if err := s.Delete(c); err != nil {
		t.Fatal(err)
	}
	putBlock(t, s, data)
	if rec := record(t, s, c); rec.off == 0 {
		t.Fatal("the block put again took its old record's place")
	}
	release()
	r := <-read
	if r.err != nil {
		t.Fatalf("range read of a block put again during it: %v", r.err)
	}
	if r.size != uint64(len(data)) || string(r.buf) != string(data[off:off+n]) {
		t.Fatalf("range read gave %d bytes of a %d-byte block, not the block's", len(r.buf), r.size)
	}
	if got := reads.Load(); got != 2 {
		t.Fatalf("%d range reads of the pack, want 2 (the old record, then the new)", got)
	}
}
