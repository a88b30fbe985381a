package blockstore

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// fillDisk fills dir's file system to its last block, root's reserve
// included, as another writer would that keeps nothing for the index, and
// returns the file to remove to give the space back.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	for step := int64(64 << 20); step >= 4<<10; step /= 2 {
		for syscall.Fallocate(int(f.Fd()), 0, size, step) == nil {
			size += step
		}
	}
	return path
}

// TestIndexOutOfSpaceMended: when something else fills the disk to its
// last block, the index's journal write fails with ENOSPC and goleveldb
// keeps failing writes; Puts are refused with ENOSPC, writing nothing.
// Once the space is back, the next Put mends the index without a restart
// (a new journal), grouped session adds go on, a deletion goes through,
// and every block acknowledged is there after reopening.
func TestIndexOutOfSpaceMended(t *testing.T) {
	root := smallExt4(t, 256<<20)
	dir := filepath.Join(root, "store")
	s := openTest(t, dir)
	var held []cid.Cid
	for i := range uint64(3) {
		held = append(held, putBlock(t, s, randBytes(15000+i, 1<<20)))
	}
	filler := fillDisk(t, root)
	// Adding held blocks to sessions writes only the index: the first
	// add that needs a new block for the journal fails.
	sessionOf := func(id string) Session {
		return Session{ID: []byte(id), Bag: "b", Expiry: time.Now().Add(time.Hour)}
	}
	var err error
	adds := 0
	for ; adds < 100000 && err == nil; adds++ {
		err = s.AddToSession(sessionOf(fmt.Sprint("s", adds)), held[adds%len(held)])
	}
	t.Logf("%d session adds on a full disk, then: %v", adds, err)
	if !fsutil.NoSpace(err) {
		t.Fatalf("session add on a full disk: %v; want ENOSPC", err)
	}
	next := randBytes(15100, 1<<20)
	if err := s.Put(chunker.ChunkCID(next), next); !fsutil.NoSpace(err) {
		t.Fatalf("Put with the index out of space: %v; want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// goleveldb kept the journal's error: a write straight to it fails.
	var b leveldb.Batch
	b.Put([]byte("mend-test"), []byte("x"))
	if err := s.db.Write(&b, nil); err == nil {
		t.Fatal("goleveldb took a write after its journal failed, with no mend")
	}

	held = append(held, putBlock(t, s, next))
	data := randBytes(15101, 1<<20)
	c := chunker.ChunkCID(data)
	if err := s.PutInSession(sessionOf("after"), c, data); err != nil {
		t.Fatalf("PutInSession after the mend: %v", err)
	}
	held = append(held, c)
	gone := putBlock(t, s, randBytes(15102, 1<<20))
	if err := s.Delete(gone); err != nil {
		t.Fatalf("Delete after the mend: %v", err)
	}
	s = reopenHolding(t, s, dir, held)
	if ok, err := s.Has(gone); ok || err != nil {
		t.Errorf("Has of the block deleted after the mend: %v, %v", ok, err)
	}
	if n, err := s.SessionBytes([]byte("after")); err != nil || n != 1<<20 {
		t.Errorf("session bytes after reopening: %d, %v; want %d", n, err, 1<<20)
	}
}
