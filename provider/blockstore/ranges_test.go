package blockstore

// Ranged reads racing deletions.

import (
	"errors"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestDeleteWaitsForRangeRead: a deletion of a block whose range read is
// in flight (looked up, reading: here held at the pack set's lock) waits
// for the read, which returns the block's bytes; after the deletion a
// range read finds nothing.
func TestDeleteWaitsForRangeRead(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(120, 70_000)
	c := putBlock(t, s, data)

	s.packs.mu.Lock() // the read stops in acquire, after its lookup
	var once sync.Once
	release := func() { once.Do(s.packs.mu.Unlock) }
	defer release() // on a failure too: Close needs the lock
	type result struct {
		buf  []byte
		size uint64
		err  error
	}
	read := make(chan result, 1)
	go func() {
		buf, size, err := s.ReadRange(c, 1000, 5000)
		read <- result{buf, size, err}
	}()
	waitBlockedIn(t, "(*packSet).acquire", "sync.(*Mutex).Lock", 1)
	deleted := make(chan error, 1)
	go func() { deleted <- s.Delete(c) }()
	waitBlockedIn(t, "(*Store).Delete", "sync.(*RWMutex).Lock", 1)
	release()

	r := <-read
	if r.err != nil || r.size != uint64(len(data)) {
		t.Fatalf("ReadRange racing a Delete = %d, %v; want the %d-byte block's range", r.size, r.err, len(data))
	}
	equalBytes(t, "ReadRange racing a Delete", r.buf, data[1000:6000])
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadRange(c, 1000, 5000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadRange after the Delete: %v, want ErrNotFound", err)
	}
	checkNoRecord(t, s, c)
}

// TestRangeReadsRacingDeletes: range reads running while their blocks are
// deleted and new ones put return each block's own bytes or ErrNotFound,
// never zeros or another block's bytes.
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
			}
		}()
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
