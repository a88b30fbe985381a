package blockstore

// The pool of iterators the look-ups of object references seek with.

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// putObject stores the blocks of object id (its data in 1 KiB chunks) and
// its manifest.
func putObject(t *testing.T, s *Store, id uint64, data []byte) Manifest {
	t.Helper()
	m, blocks := object(t, "dynamic:channel:1", id, data, 1<<10)
	for i, blk := range blocks {
		if err := s.Put(m.Chunks[i].CID, blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// keepPooled makes the pool of s keep its iterators an hour: a test
// stalled on a loaded machine must not see them age out.
func keepPooled(s *Store) {
	s.refs.mu.Lock()
	defer s.refs.mu.Unlock()
	s.refs.maxAge = time.Hour
}

func pooled(s *Store) int {
	s.refs.mu.Lock()
	defer s.refs.mu.Unlock()
	return len(s.refs.free)
}

// TestObjectsOfSeesWritesDespitePool: a look-up right after a manifest is
// recorded or an object deleted sees it, though the pool holds an
// iterator made before (which sees the index as it was then).
func TestObjectsOfSeesWritesDespitePool(t *testing.T) {
	s := openTest(t, t.TempDir())
	keepPooled(s)
	shared := randBytes(140, 1<<10)
	ma := putObject(t, s, 1, append(bytes.Clone(shared), randBytes(141, 3<<10)...))
	c, only1 := shared0(ma), ma.Chunks[1].CID
	objectsOf := func(want ...uint64) {
		t.Helper()
		if got, err := s.ObjectsOf(c); err != nil || !slices.Equal(got, want) {
			t.Fatalf("ObjectsOf = %v, %v; want %v", got, err, want)
		}
		if n := pooled(s); n != 1 {
			t.Fatalf("%d iterators pooled after a look-up, want 1", n)
		}
	}
	objectsOf(1)
	objectsOf(1) // from the pool

	putObject(t, s, 2, append(bytes.Clone(shared), randBytes(142, 2<<10)...))
	objectsOf(1, 2)
	if ok, err := s.HasObjectWithBlock(only1); err != nil || !ok {
		t.Fatalf("HasObjectWithBlock(a chunk of object 1) = %v, %v", ok, err)
	}
	if err := s.DeleteObject(1); err != nil {
		t.Fatal(err)
	}
	objectsOf(2)
	if ok, err := s.HasObjectWithBlock(only1); err != nil || ok {
		t.Fatalf("HasObjectWithBlock(a chunk of deleted object 1) = %v, %v", ok, err)
	}
}

// TestRefItersSweptAndClosed: an idle pool lets go of its iterators once
// they are maxAge old (each pins the index version it was made at), and
// Close releases them and pools none after.
func TestRefItersSweptAndClosed(t *testing.T) {
	s := openTest(t, t.TempDir())
	keepPooled(s)
	m := putObject(t, s, 1, randBytes(150, 2<<10))
	if _, err := s.ObjectsOf(shared0(m)); err != nil {
		t.Fatal(err)
	}
	s.refs.mu.Lock()
	armed := s.refs.timer != nil
	s.refs.mu.Unlock()
	if pooled(s) != 1 || !armed {
		t.Fatalf("%d pooled, sweep armed %v; want 1 and armed", pooled(s), armed)
	}
	s.refs.sweep(time.Now()) // too young to go
	if pooled(s) != 1 {
		t.Fatal("a young iterator was swept")
	}
	s.refs.sweep(time.Now().Add(s.refs.maxAge))
	s.refs.mu.Lock()
	armed = s.refs.timer != nil
	s.refs.mu.Unlock()
	if pooled(s) != 0 || armed {
		t.Fatalf("%d pooled, sweep armed %v after maxAge; want none, not armed", pooled(s), armed)
	}

	if _, err := s.ObjectsOf(shared0(m)); err != nil {
		t.Fatal(err)
	}
	alive := func(want string) {
		t.Helper()
		if n, err := s.db.GetProperty("leveldb.aliveiters"); err != nil || n != want {
			t.Fatalf("%s iterators alive (%v), want %s", n, err, want)
		}
	}
	alive("1")
	s.refs.close() // what Close does before closing the index
	alive("0")
	if _, err := s.ObjectsOf(shared0(m)); err != nil {
		t.Fatal(err)
	}
	alive("0")
	if n := pooled(s); n != 0 {
		t.Fatalf("%d iterators pooled after close", n)
	}
}

// TestObjectsOfConcurrentWithWrites: look-ups from several goroutines,
// sharing the pool, while objects sharing a chunk are recorded and
// deleted, each see a state the index was in (race detector: the pool's
// hand-offs), and after the writes the final state.
func TestObjectsOfConcurrentWithWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	shared := randBytes(160, 1<<10)
	m0 := putObject(t, s, 100, append(bytes.Clone(shared), randBytes(161, 1<<10)...))
	c := shared0(m0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := s.ObjectsOf(c)
				if err == nil && (len(got) == 0 || got[len(got)-1] != 100) {
					err = fmt.Errorf("ObjectsOf = %v, always held by object 100", got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range uint64(20) {
		putObject(t, s, i+1, append(bytes.Clone(shared), randBytes(170+i, 1<<10)...))
		if i%2 == 1 {
			if err := s.DeleteObject(i + 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := []uint64{}
	for i := uint64(1); i <= 20; i += 2 {
		want = append(want, i)
	}
	want = append(want, 100)
	if got, err := s.ObjectsOf(c); err != nil || !slices.Equal(got, want) {
		t.Fatalf("ObjectsOf after the writes = %v, %v; want %v", got, err, want)
	}
}
