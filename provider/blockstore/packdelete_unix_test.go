//go:build unix

package blockstore

// Deleting pack records: holes punched, dead packs unlinked, and where
// holes cannot be punched. Unix only: they measure st_blocks.

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

// allocatedBytes is the space a file takes on disk (st_blocks).
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestPackDeletePunchesAndUnlinks: deleting a block punches its record out
// of the pack (the pack takes a block's worth less space, its neighbours
// are intact); a pack with no live record left is unlinked, at once unless
// it is the one being written, and then on the next Open or once the next
// write rotates it out.
func TestPackDeletePunchesAndUnlinks(t *testing.T) {
	dir := t.TempDir()
	const limit = 3*(1<<20+hdrSize) + 1
	s := openPacks(t, dir, limit)
	var cs []cid.Cid
	var datas [][]byte
	for i := range 6 {
		d := randBytes(uint64(80+i), 1<<20)
		datas = append(datas, d)
		cs = append(cs, putBlock(t, s, d))
	}
	first, active := s.packs.path(packOf(t, s, cs[0])), s.packs.path(packOf(t, s, cs[5]))
	if first == active || packOf(t, s, cs[2]) != packOf(t, s, cs[0]) {
		t.Fatal("want blocks 0-2 in the first pack, 3-5 in the second")
	}
	before := allocatedBytes(t, first)
	if err := s.Delete(cs[0]); err != nil {
		t.Fatal(err)
	}
	if s.packs.noPunch.Load() {
		t.Skip("the file system cannot punch holes")
	}
	if after := allocatedBytes(t, first); after > before-(1<<20) {
		t.Fatalf("pack takes %d bytes after deleting a 1 MiB block, %d before; want at least 1 MiB less", after, before)
	}
	checkNoRecord(t, s, cs[0])
	checkGet(t, s, cs[1], datas[1])
	for _, c := range cs[1:] {
		if err := s.Delete(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pack with no live record kept: %v", err)
	}
	if _, err := os.Stat(active); err != nil {
		t.Fatalf("the pack being written was unlinked: %v", err)
	}
	if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPacks(t, dir, limit)
	if _, err := os.Stat(active); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dead pack kept after reopening: %v", err)
	}
	// A pack emptied while written to goes when the next write rotates.
	var full []cid.Cid
	for i := range 3 {
		full = append(full, putBlock(t, s, randBytes(uint64(90+i), 1<<20)))
	}
	emptied := s.packs.path(packOf(t, s, full[0]))
	for _, c := range full {
		if err := s.Delete(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(emptied); err != nil {
		t.Fatalf("the pack being written was unlinked: %v", err)
	}
	next := putBlock(t, s, randBytes(99, 1<<20))
	if s.packs.path(packOf(t, s, next)) == emptied {
		t.Fatal("no rotation")
	}
	if _, err := os.Stat(emptied); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("emptied pack kept after it was rotated out: %v", err)
	}
}

// TestPackDeleteWithoutHoles: where holes cannot be punched, a deleted
// block's space stays taken until its whole pack is dead, and then the
// pack is unlinked all the same.
func TestPackDeleteWithoutHoles(t *testing.T) {
	const limit = 2*(1<<20+hdrSize) + 1
	s := openPacks(t, t.TempDir(), limit)
	s.packs.noPunch.Store(true) // as after an EOPNOTSUPP
	a, b := putBlock(t, s, randBytes(120, 1<<20)), putBlock(t, s, randBytes(121, 1<<20))
	putBlock(t, s, randBytes(122, 1<<20)) // rotates: the first pack is no longer written to
	first := s.packs.path(packOf(t, s, a))
	before := allocatedBytes(t, first)
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if after := allocatedBytes(t, first); after != before {
		t.Fatalf("pack takes %d bytes after a delete without holes, %d before", after, before)
	}
	if err := s.Delete(b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dead pack kept: %v", err)
	}
}
