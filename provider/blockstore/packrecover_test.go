package blockstore

// Pack recovery after a crash: records synced but not indexed, torn
// records, entries past a pack's end.

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestPackRecordRecoveredAfterCrash: a record synced in its pack whose
// index write the crash prevented is indexed again by Open, in the
// recovery session, where it was written.
func TestPackRecordRecoveredAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	kept := randBytes(30, 70_000)
	ck := putBlock(t, s, kept)
	lost := randBytes(31, 1<<20)
	cl, w := writeUnindexed(t, s, lost)
	if ok, _ := s.Has(cl); ok {
		t.Fatal("unindexed record held before the crash")
	}
	crash(t, s)

	s = openTest(t, dir)
	checkGet(t, s, ck, kept)
	checkGet(t, s, cl, lost)
	if _, off, _, err := s.Locate(cl); err != nil || off != w.off+hdrSize {
		t.Fatalf("recovered block located at %d, %v; want its record's data at %d", off, err, w.off+hdrSize)
	}
	ids, err := s.SessionBlocks(recoveredSession)
	if err != nil || len(ids) != 1 || !ids[0].Equals(cl) {
		t.Fatalf("recovery session holds %v, %v; want [%s]", ids, err, cl)
	}
	if n, _ := s.SessionBytes(recoveredSession); n != uint64(len(lost)) {
		t.Fatalf("recovery session holds %d bytes, want %d", n, len(lost))
	}
	if st := s.Stats(); st.Blocks != 2 || st.Bytes != uint64(len(kept)+len(lost)) {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestPackTornRecordsDropped: after a crash, a record whose data did not
// all reach the disk is punched out when an indexed record follows it, and
// cut off when it is the pack's tail; the records around them are intact.
func TestPackTornRecordsDropped(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a := randBytes(40, 100_000)
	ca := putBlock(t, s, a)
	mid := randBytes(41, 200_000)
	cm, wm := writeUnindexed(t, s, mid)
	b := randBytes(42, 300_000)
	cb := putBlock(t, s, b)
	tail := randBytes(43, 1<<20)
	ct, wt := writeUnindexed(t, s, tail)
	path := s.packs.path(wt.p.n)
	crash(t, s)

	// The middle record's header made it, not all its data; the tail's
	// write stopped 1000 bytes into its data.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), wm.off+hdrSize+50_000); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := os.Truncate(path, wt.off+hdrSize+1000); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	checkGet(t, s, ca, a)
	checkGet(t, s, cb, b)
	for _, c := range []cid.Cid{cm, ct} {
		if ok, _ := s.Has(c); ok {
			t.Fatalf("torn record %s indexed", c)
		}
		checkNoRecord(t, s, c)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != wt.off {
		t.Fatalf("pack after recovery: %v, %v; want it cut to %d bytes, the end of the last whole record", st, err, wt.off)
	}
	if st := s.Stats(); st.Blocks != 2 {
		t.Fatalf("Stats = %+v; want the 2 whole blocks", st)
	}
}

// TestPackEntriesPastTheEndDropped: after a crash, an index entry whose
// record runs past its pack's end, or whose pack is gone, is dropped, and
// the damaged pack (sealed though it is) is scanned: its torn tail cut.
func TestPackEntriesPastTheEndDropped(t *testing.T) {
	dir := t.TempDir()
	s := openPacks(t, dir, 600_000)
	a, b, c := randBytes(50, 250_000), randBytes(51, 250_000), randBytes(52, 250_000)
	ca, cb, cc := putBlock(t, s, a), putBlock(t, s, b), putBlock(t, s, c)
	if packOf(t, s, ca) != packOf(t, s, cb) || packOf(t, s, cc) == packOf(t, s, cb) {
		t.Fatalf("blocks in packs %d, %d, %d; want the first two together", packOf(t, s, ca), packOf(t, s, cb), packOf(t, s, cc))
	}
	recB := record(t, s, cb)
	first, second := s.packs.path(recB.pack), s.packs.path(packOf(t, s, cc))
	crash(t, s)
	if err := os.Truncate(first, recB.off+hdrSize+100_000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(second); err != nil {
		t.Fatal(err)
	}

	s = openPacks(t, dir, 600_000)
	checkGet(t, s, ca, a)
	for _, c := range []cid.Cid{cb, cc} {
		if ok, _ := s.Has(c); ok {
			t.Fatalf("entry of %s kept, its record is not whole on disk", c)
		}
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != uint64(len(a)) {
		t.Fatalf("Stats = %+v", st)
	}
	if st, err := os.Stat(first); err != nil || st.Size() != recB.off {
		t.Fatalf("pack after recovery: %v, %v; want the torn record cut off at %d", st, err, recB.off)
	}
}

// TestEntryFits: an entry fits its pack only if the pack is on disk and
// the record starts on a record boundary and ends within it, whatever
// sizes it claims.
func TestEntryFits(t *testing.T) {
	sizes := map[uint32]int64{1: 3 * ioAlign}
	for _, tc := range []struct {
		name string
		rec  blockRecord
		want bool
	}{
		{"whole", blockRecord{pack: 1, off: ioAlign, size: ioAlign}, true},
		{"first", blockRecord{pack: 1, off: 0, size: 1}, true},
		{"misaligned", blockRecord{pack: 1, off: 512, size: 100}, false},
		{"negative offset", blockRecord{pack: 1, off: -ioAlign, size: 100}, false},
		{"past the end", blockRecord{pack: 1, off: 2 * ioAlign, size: 1}, false},
		{"offset past the end", blockRecord{pack: 1, off: 4 * ioAlign, size: 0}, false},
		{"size overflowing", blockRecord{pack: 1, off: 0, size: 1 << 63}, false},
		{"pack missing", blockRecord{pack: 2, off: 0, size: 1}, false},
	} {
		tc.rec.packed = true
		if got := entryFits(tc.rec, sizes); got != tc.want {
			t.Errorf("%s: entryFits(%+v) = %v, want %v", tc.name, tc.rec, got, tc.want)
		}
	}
}

// TestMisalignedEntryDropped: an index entry whose offset lies inside its
// pack but not on a record boundary names no record (it would serve the
// middle of one). A clean Open (walkBlocks) drops it; an Open after a crash
// (walkBlocks too) drops it and scans the pack, finding the block's
// record where it really is.
func TestMisalignedEntryDropped(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			a, b := randBytes(60, 20_000), randBytes(61, 20_000)
			ca, cb := putBlock(t, s, a), putBlock(t, s, b)
			// A record after b's: b's misaligned entry still ends
			// within the pack.
			putBlock(t, s, randBytes(62, 20_000))
			rec := record(t, s, cb)
			real := rec.off
			rec.off += 512 // within the pack, not a record's start
			setRecord(t, s, cb, rec.encode())
			if clean {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(t, s)
			}

			s = openTest(t, dir)
			checkGet(t, s, ca, a)
			if clean {
				if ok, _ := s.Has(cb); ok {
					t.Fatal("a clean Open kept an entry naming no record's start")
				}
				if st := s.Stats(); st.Blocks != 2 {
					t.Fatalf("Stats = %+v; want the two blocks whose entries fit", st)
				}
				return
			}
			checkGet(t, s, cb, b)
			if _, off, _, err := s.Locate(cb); err != nil || off != real+hdrSize {
				t.Fatalf("block located at %d, %v; want its record's data at %d", off, err, real+hdrSize)
			}
			if st := s.Stats(); st.Blocks != 3 {
				t.Fatalf("Stats = %+v; want all three blocks", st)
			}
		})
	}
}

// TestRecoveryReadErrorFailsOpen: a record the recovery scan cannot read
// (EIO: a failing disk), its header or its data, is not known to be
// garbage, so Open fails rather than punch or cut it off; once the disk
// reads again, Open recovers the record whole.
func TestRecoveryReadErrorFailsOpen(t *testing.T) {
	for _, part := range []string{"header", "data"} {
		t.Run(part, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			kept := randBytes(63, 70_000)
			ck := putBlock(t, s, kept)
			lost := randBytes(64, 200_000)
			cl, w := writeUnindexed(t, s, lost)
			path := s.packs.path(w.p.n)
			crash(t, s)

			at := w.off // the unindexed record's header, or its data
			if part == "data" {
				at += hdrSize
			}
			var failed atomic.Int32
			eio := func(read func() (int, error), f *os.File, off int64) (int, error) {
				if f.Name() == path && off == at {
					failed.Add(1)
					return 0, syscall.EIO
				}
				return read()
			}
			if s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackRead(eio)); !errors.Is(err, syscall.EIO) {
				if err == nil {
					_ = s.Close()
				}
				t.Fatalf("Open whose recovery scan cannot read a record's %s: %v, want EIO", part, err)
			}
			if failed.Load() == 0 {
				t.Fatalf("the scan never read the unindexed record's %s: the test no longer reaches recoverRecord", part)
			}
			// Nothing cut off: the pack still reaches past the record (and
			// over the space allocated ahead of it, see packalloc.go).
			if st, err := os.Stat(path); err != nil || st.Size() < w.off+w.n {
				t.Fatalf("pack after the failed Open: %v, %v; want it whole, at least %d bytes", st, err, w.off+w.n)
			}

			s = openTest(t, dir)
			checkGet(t, s, ck, kept)
			checkGet(t, s, cl, lost)
		})
	}
}
