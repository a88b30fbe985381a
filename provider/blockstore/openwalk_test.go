package blockstore

// Open's one walk of the block index.

import (
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// damagedSealedPack stores six blocks in packs of 256 KiB, all sealed by
// a clean reopen, and a seventh in the active pack; then gives sealed pack
// 2 an entry that runs past its end, of a CID the index sorts after the
// entries of pack 2's own blocks (so the walk meets them before it finds
// the pack damaged). It returns the store, the blocks of pack 2, every
// block's data by CID, and the CID of the bad entry.
func damagedSealedPack(t *testing.T, dir string) (*Store, []cid.Cid, map[cid.Cid][]byte, cid.Cid) {
	t.Helper()
	const damaged = 2
	s := openPacks(t, dir, 256<<10)
	held := map[cid.Cid][]byte{}
	for i := range 6 {
		data := randBytes(uint64(300+i), 100_000)
		held[putBlock(t, s, data)] = data
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPacks(t, dir, 256<<10) // every pack sealed
	data := randBytes(310, 100_000)
	held[putBlock(t, s, data)] = data
	var inPack []cid.Cid
	last := ""
	for c := range held {
		if packOf(t, s, c) == damaged {
			inPack = append(inPack, c)
			last = max(last, c.KeyString())
		}
	}
	if len(inPack) != 2 {
		t.Fatalf("%d blocks in pack %d, want 2", len(inPack), damaged)
	}
	_, sizes, err := s.packs.list()
	if err != nil {
		t.Fatal(err)
	}
	var bad cid.Cid
	for seed := uint64(311); ; seed++ {
		if bad = chunker.ChunkCID(randBytes(seed, 1000)); strings.Compare(bad.KeyString(), last) > 0 {
			break
		}
	}
	setRecord(t, s, bad, blockRecord{size: 1000, packed: true, pack: damaged, off: sizes[damaged]}.encode())
	return s, inPack, held, bad
}

// TestOpenWalkExtentsOnlyOfScannedPacks: reconciling, the walk keeps the
// extents of the indexed records only of the packs recovery scans (the
// unsealed one, and a sealed one found damaged from then on), not of every
// sealed pack of the store; it drops the entry that does not fit.
func TestOpenWalkExtentsOnlyOfScannedPacks(t *testing.T) {
	s, _, _, _ := damagedSealedPack(t, t.TempDir())
	nums, sizes, err := s.packs.list()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.sealedPacks()
	if err != nil {
		t.Fatal(err)
	}
	active := nums[len(nums)-1]
	if len(sealed) < 3 || sealed[active] {
		t.Fatalf("sealed packs %v, active %d: want 3 or more sealed, not the active one", sealed, active)
	}
	// A store of its own over the same index: the walk counts into it.
	scratch := &Store{dir: s.dir, db: s.db, packs: newPackSet(s.packs.dir, defaultPackLimit, s.files, nil, discard)}
	w := &openWalk{reconcile: true, sizes: sizes, sealed: sealed}
	if err := scratch.walkBlocks(w); err != nil {
		t.Fatal(err)
	}
	if w.stale != 1 || len(w.drop) != 1 || !w.damaged[2] || len(w.damaged) != 1 {
		t.Fatalf("stale %d, drop %d, damaged %v; want 1 stale entry dropped, pack 2 damaged", w.stale, len(w.drop), w.damaged)
	}
	if err := scratch.damagedExtents(w); err != nil {
		t.Fatal(err)
	}
	for n := range w.extents {
		if n != active && n != 2 {
			t.Errorf("extents kept of pack %d, which is not scanned", n)
		}
	}
	if len(w.extents[active]) != 1 || len(w.extents[2]) != 2 {
		t.Fatalf("extents of the active pack %v, of the damaged pack %v; want 1 and both of its records", w.extents[active], w.extents[2])
	}
	if scratch.indexWalks != 2 {
		t.Fatalf("%d walks of the index; want 2 (the second for the damaged pack)", scratch.indexWalks)
	}
	if st := scratch.Stats(); st.Blocks != 7 || scratch.packs.live[2] != 2 {
		t.Fatalf("walk counted %d blocks, %d live in pack 2; want 7 and 2", st.Blocks, scratch.packs.live[2])
	}
}

// TestOpenAfterCrashWalksIndexOnce: after a crash, with a sealed pack
// found damaged after the walk met its records, Open walks the block index
// once more for that pack's extents (twice in all), drops the entry that
// does not fit, scans the damaged pack and keeps its records, and counts
// every block; a clean reopen walks it once.
func TestOpenAfterCrashWalksIndexOnce(t *testing.T) {
	dir := t.TempDir()
	s, inPack, held, bad := damagedSealedPack(t, dir)
	crash(t, s)
	s = openPacks(t, dir, 256<<10)
	if s.indexWalks != 2 {
		t.Fatalf("Open after a crash, with a damaged sealed pack, walked the block index %d times, want 2", s.indexWalks)
	}
	if ok, _ := s.Has(bad); ok {
		t.Fatal("the entry past its pack's end survived Open")
	}
	for _, c := range inPack {
		if n := recordsOf(t, s, c); n != 1 {
			t.Fatalf("%d records of block %s of the damaged pack, want 1", n, c)
		}
	}
	for c, data := range held {
		checkGet(t, s, c, data)
	}
	if st := s.Stats(); st.Blocks != uint64(len(held)) {
		t.Fatalf("Stats = %+v, want %d blocks", st, len(held))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPacks(t, dir, 256<<10)
	if s.indexWalks != 1 {
		t.Fatalf("a clean Open walked the block index %d times, want 1", s.indexWalks)
	}
	if st := s.Stats(); st.Blocks != uint64(len(held)) {
		t.Fatalf("Stats after a clean reopen = %+v, want %d blocks", st, len(held))
	}
}

// TestDamagedPackKeepsRecordWithRottedHeader: after a crash, a sealed pack
// found damaged holds an indexed record whose header rotted (its bytes are
// intact, so a read, which needs only the entry, serves it). The recovery
// scan must not take that record for junk and punch or cut it: the block
// is still served, whether it is the pack's first record or its last.
func TestDamagedPackKeepsRecordWithRottedHeader(t *testing.T) {
	for _, which := range []string{"first", "last"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			s, inPack, held, _ := damagedSealedPack(t, dir)
			victim := inPack[0]
			if r0, r1 := record(t, s, inPack[0]), record(t, s, inPack[1]); (which == "first") != (r0.off < r1.off) {
				victim = inPack[1]
			}
			vrec := record(t, s, victim)
			path := s.packs.path(vrec.pack)
			crash(t, s)
			rot(t, path, vrec.off+9) // a byte of the header's size field
			s = openPacks(t, dir, 256<<10)
			checkGet(t, s, victim, held[victim])
		})
	}
}

// rot flips the byte at off of the file at path.
func rot(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
