package blockstore

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/satchel-net/satchel/internal/loopfs"
)

// smallExt4 mounts an ext4 of size bytes for the test (loopfs.Ext4).
func smallExt4(t *testing.T, size int64) string {
	t.Helper()
	return loopfs.Ext4(t, size, "a disk that really fills")
}

// freeBytes is the space an unprivileged writer may still use on dir's
// file system.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	free, _, err := fsutil.Space(dir)
	if err != nil {
		t.Fatal(err)
	}
	return int64(free)
}

// ballast fills dir's file system until room bytes are left free, and
// returns the file to remove to give the space back.
func ballast(t *testing.T, dir string, room int64) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, freeBytes(t, dir)-room); err != nil {
		t.Fatal(err)
	}
	return path
}

// fillStore puts 1 MiB blocks until one fails (at most max), returning how
// many were acknowledged and the error.
func fillStore(t *testing.T, s *Store, seed uint64, max int) (int, error) {
	for i := range max {
		b := randBytes(seed+uint64(i), 1<<20)
		if err := s.Put(chunker.ChunkCID(b), b); err != nil {
			return i, err
		}
	}
	return max, nil
}

// TestAllocAheadNearFullDisk: on an ext4 that really fills, allocating
// packs ahead takes none of the space the index (goleveldb, same file
// system) needs, whether the free space is below the reserve (nothing is
// allocated ahead), above it (allocation stops at the reserve) or a
// fallocate fails anyway (what it took is given back): the store takes
// about as many 1 MiB blocks as there was room for above the index's
// reserve (headroom.go; all of it where the free space read lies), then
// fails with ENOSPC, and takes blocks again once the space is back.
// Allocating 64 MiB with 24 MiB free used to take all of it; the index's
// journal write then failed, and goleveldb refused every later write until
// a restart.
func TestAllocAheadNearFullDisk(t *testing.T) {
	for _, c := range []struct {
		name string
		room int64
		lie  bool // the free space read says there is plenty
	}{
		{"below reserve", IndexReserve + 6<<20, false},
		{"above reserve", IndexReserve + 100<<20, false},
		{"fallocate fails", 24 << 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := smallExt4(t, 256<<20)
			dir := filepath.Join(root, "store")
			s := openTest(t, dir)
			if !s.packs.io.direct.Load() {
				t.Skip("no direct I/O here: packs are not allocated ahead")
			}
			if c.lie {
				s.packs.space = func() (uint64, uint64, error) { return 1 << 40, 1 << 41, nil }
			}
			ball := ballast(t, root, c.room)
			acked, err := fillStore(t, s, 7000, 200)
			t.Logf("%d Puts of 1 MiB with %d MiB free, then: %v", acked, c.room>>20, err)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v; want ENOSPC", err)
			}
			room := c.room - IndexReserve
			if c.lie {
				room = c.room
			}
			if int64(acked) < room>>20-4 {
				t.Errorf("only %d blocks of 1 MiB taken with %d MiB free", acked, c.room>>20)
			}
			if err := os.Remove(ball); err != nil {
				t.Fatal(err)
			}
			if n, err := fillStore(t, s, 9000, 3); err != nil {
				t.Fatalf("a Put once the disk has room again (after %d): %v", n, err)
			}
		})
	}
}

// TestAllocAheadBounded: allocating ahead leaves the file system its
// reserve, and a failed fallocate leaves the pack cut to its records and
// the space it took free.
func TestAllocAheadBounded(t *testing.T) {
	root := smallExt4(t, 256<<20)
	s := openTest(t, filepath.Join(root, "store"))
	if !s.packs.io.direct.Load() {
		t.Skip("no direct I/O here: packs are not allocated ahead")
	}
	_, total, err := fsutil.Space(root)
	if err != nil {
		t.Fatal(err)
	}
	reserve := int64(allocReserve(total))
	ballast(t, root, reserve+16<<20)
	c := putBlock(t, s, randBytes(1, 1<<20))
	rec := record(t, s, c)
	end := rec.off + recordLen(rec.size)
	st, err := os.Stat(s.packs.path(rec.pack))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() <= end {
		t.Fatalf("pack of %d bytes, its records end at %d: not allocated ahead with 16 MiB above the reserve", st.Size(), end)
	}
	if free := freeBytes(t, root); free < reserve-2<<20 {
		t.Errorf("%d bytes free after allocating ahead, want the reserve, %d, left (within a record)", free, reserve)
	}
	if got := s.AllocatedAhead(); int64(got) != st.Size()-end {
		t.Errorf("AllocatedAhead = %d, want the pack's %d bytes past its records", got, st.Size()-end)
	}
}

// TestAllocFailureGivenBack: a fallocate that fails with ENOSPC (here the
// free space read lies; in life another writer took the space meanwhile)
// gives back what it took, which ext4 keeps: the pack is cut to its
// records, the space is free again, and nothing more is allocated ahead.
func TestAllocFailureGivenBack(t *testing.T) {
	root := smallExt4(t, 256<<20)
	s := openTest(t, filepath.Join(root, "store"))
	if !s.packs.io.direct.Load() {
		t.Skip("no direct I/O here: packs are not allocated ahead")
	}
	s.packs.space = func() (uint64, uint64, error) { return 1 << 40, 1 << 41, nil }
	const room = 24 << 20
	ballast(t, root, room)
	rec := record(t, s, putBlock(t, s, randBytes(1, 1<<20)))
	end := rec.off + recordLen(rec.size)
	if st, err := os.Stat(s.packs.path(rec.pack)); err != nil || st.Size() != end {
		t.Fatalf("pack after a failed allocation: %v, %v; want it cut to its records' end, %d", st, err, end)
	}
	if free := freeBytes(t, root); free < room-end-(1<<20) {
		t.Errorf("%d bytes free after a failed allocation and %d bytes of records, %d before: the space it took was kept",
			free, end, room)
	}
	if n := s.AllocatedAhead(); n != 0 {
		t.Errorf("AllocatedAhead = %d after a failed allocation", n)
	}
}
