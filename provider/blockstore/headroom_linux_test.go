package blockstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// TestIndexHeadroomFullDisk: on an ext4 that another file fills to its
// last few MiB above the index's reserve, Puts are taken until the
// reserve is reached, then refused with ENOSPC (the provider's no_space),
// not with an index error; the index still takes writes, a deletion among
// them, whose space is taken again; once the filler is gone Puts are taken again without a restart,
// and every block acknowledged is there after reopening.
func TestIndexHeadroomFullDisk(t *testing.T) {
	root := smallExt4(t, 256<<20)
	dir := filepath.Join(root, "store")
	s := openTest(t, dir)
	const room = IndexReserve + 12<<20
	ball := ballast(t, root, room)
	var held []cid.Cid
	put := func(seed uint64) error {
		b := randBytes(seed, 1<<20)
		c := chunker.ChunkCID(b)
		err := s.Put(c, b)
		if err == nil {
			held = append(held, c)
		}
		return err
	}
	var err error
	for i := uint64(0); i < 100 && err == nil; i++ {
		err = put(13000 + i)
	}
	t.Logf("%d Puts of 1 MiB with %d MiB free above the reserve, then: %v", len(held), (room-IndexReserve)>>20, err)
	if !fsutil.NoSpace(err) || strings.Contains(err.Error(), "index:") {
		t.Fatalf("filling the disk: %v; want ENOSPC from the headroom check", err)
	}
	if n := len(held); n < 12-4 || n > 12 {
		t.Errorf("%d blocks of 1 MiB taken with 12 MiB free above the reserve", n)
	}
	if free := freeBytes(t, root); free < IndexReserve-(1<<20) {
		t.Errorf("%d bytes free after the refusal, want the index's reserve, %d, left", free, IndexReserve)
	}
	// The index is healthy: it takes a synced write and a deletion.
	var b leveldb.Batch
	b.Put([]byte("headroom-test"), []byte("x"))
	if err := s.writeIndex(&b, true); err != nil {
		t.Fatalf("index write at the reserve: %v", err)
	}
	if err := s.Delete(held[0]); err != nil {
		t.Fatalf("Delete at the reserve: %v", err)
	}
	held = held[1:]
	// The deleted block's space (punched out) takes one block more.
	if err := put(13500); err != nil {
		t.Fatalf("Put after a Delete at the reserve: %v", err)
	}
	if err := put(13501); !fsutil.NoSpace(err) {
		t.Fatalf("Put at the reserve again: %v; want ENOSPC", err)
	}

	if err := os.Remove(ball); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		if err := put(14000 + i); err != nil {
			t.Fatalf("Put once the disk has room again: %v", err)
		}
	}
	reopenHolding(t, s, dir, held)
}

// reopenHolding closes s, opens the store in dir again and checks that it
// reads every block in held; it returns the store opened again.
func reopenHolding(t *testing.T, s *Store, dir string, held []cid.Cid) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openTest(t, dir)
	for _, c := range held {
		if _, err := s.Get(c); err != nil {
			t.Errorf("Get %s after reopening: %v", c, err)
		}
	}
	return s
}
