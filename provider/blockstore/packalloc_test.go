package blockstore

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/satchel-net/satchel/chunker"

	"github.com/ipfs/go-cid"
)

// TestPackAllocatedAhead: with direct I/O, the pack being written is
// allocated ahead of its records (so concurrent writes do not extend the
// file one at a time); Close cuts the allocated tail off, and after a
// crash the scan of the unsealed pack cuts it off as a torn tail, every
// acknowledged block whole either way.
func TestPackAllocatedAhead(t *testing.T) {
	for _, stop := range []string{"close", "crash"} {
		t.Run(stop, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			if !s.packs.io.direct.Load() {
				t.Skip("no direct I/O here: packs are not allocated ahead")
			}
			var cs []cid.Cid
			var blocks [][]byte
			for i := range 3 {
				b := randBytes(uint64(900+i), 100_000+i)
				blocks = append(blocks, b)
				cs = append(cs, putBlock(t, s, b))
			}
			if s.packs.noAlloc.Load() {
				t.Skip("the file system cannot allocate ahead")
			}
			last := record(t, s, cs[2])
			end := last.off + recordLen(last.size)
			path := s.packs.path(last.pack)
			if st, err := os.Stat(path); err != nil || st.Size() < end+packAllocStep/2 {
				t.Fatalf("pack being written: %v, %v; want it allocated at least %d bytes past its records' end %d", st, err, packAllocStep/2, end)
			}

			if stop == "close" {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(t, s)
			}
			if stop == "close" { // the scan would cut it too: look before it runs
				if st, err := os.Stat(path); err != nil || st.Size() != end {
					t.Fatalf("pack after Close: %v, %v; want it cut to its records' end, %d bytes", st, err, end)
				}
			}
			s = openTest(t, dir)
			for i, c := range cs {
				checkGet(t, s, c, blocks[i])
			}
			if st, err := os.Stat(path); err != nil || st.Size() != end {
				t.Fatalf("pack after reopening: %v, %v; want it cut to its records' end, %d bytes", st, err, end)
			}
			after := randBytes(910, 50_000)
			c := putBlock(t, s, after)
			if packOf(t, s, c) == last.pack {
				t.Fatalf("a write after reopening went to the old pack %d", last.pack)
			}
			crash(t, s)
			s = openTest(t, dir)
			checkGet(t, s, c, after)
			for i, c := range cs {
				checkGet(t, s, c, blocks[i])
			}
		})
	}
}

// TestRotatedPackTrimmed: a pack rotated out because its fdatasync failed
// keeps none of the space allocated ahead of its records (it is cut as it
// is rotated out, not only at Close), and AllocatedAhead then counts only
// the new pack's.
func TestRotatedPackTrimmed(t *testing.T) {
	var fail atomic.Bool
	s, err := Open(t.TempDir(), WithSessionExpiry(0), WithLogger(discard),
		withPackSync(func(sync func() error, _ *os.File) error {
			if fail.Load() {
				return errors.New("injected fdatasync failure")
			}
			return sync()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.packs.io.direct.Load() {
		t.Skip("no direct I/O here: packs are not allocated ahead")
	}
	first := record(t, s, putBlock(t, s, randBytes(1, 100_000)))
	if s.packs.noAlloc.Load() || s.AllocatedAhead() == 0 {
		t.Skip("the file system cannot allocate ahead")
	}
	fail.Store(true)
	failed := randBytes(2, 100_000)
	if err := s.Put(chunker.ChunkCID(failed), failed); err == nil {
		t.Fatal("a Put whose fdatasync failed succeeded")
	}
	fail.Store(false)
	next := record(t, s, putBlock(t, s, randBytes(3, 100_000)))
	if next.pack == first.pack {
		t.Fatalf("the Put after a failed fdatasync went to the same pack %d", first.pack)
	}
	end := first.off + recordLen(first.size) + recordLen(uint64(len(failed)))
	if st, err := os.Stat(s.packs.path(first.pack)); err != nil || st.Size() != end {
		t.Fatalf("pack rotated out after a failed fdatasync: %v, %v; want it cut to its records' end, %d", st, err, end)
	}
	nextEnd := next.off + recordLen(next.size)
	st, err := os.Stat(s.packs.path(next.pack))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.AllocatedAhead(); int64(got) != st.Size()-nextEnd {
		t.Errorf("AllocatedAhead = %d, want the new pack's %d", got, st.Size()-nextEnd)
	}
}
