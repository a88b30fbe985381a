package blockstore

// Pack files: rotation, concurrent writers, races of one CID, the
// quarantine of a pack record, and stores written before packs (recovery
// in packrecover_test.go, deletion in packdelete_unix_test.go).

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// openPacks opens the store in dir with packs rotated at limit bytes.
func openPacks(t *testing.T, dir string, limit int64) *Store {
	t.Helper()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackLimit(limit))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// putBlock stores data and returns its CID.
func putBlock(t *testing.T, s *Store, data []byte) cid.Cid {
	t.Helper()
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatalf("Put %d bytes: %v", len(data), err)
	}
	return c
}

// writeUnindexed writes block data's record through the store's own write
// path and returns it without indexing it: what a Put leaves when it dies
// between the pack's sync and the index write.
func writeUnindexed(t *testing.T, s *Store, data []byte) (cid.Cid, *packWrite) {
	t.Helper()
	c := chunker.ChunkCID(data)
	w, err := s.packs.write(c, data, blockCRC(data))
	if err != nil {
		t.Fatal(err)
	}
	s.packs.finish(w)
	return c, w
}

// checkGet fails unless Get returns data for c.
func checkGet(t *testing.T, s *Store, c cid.Cid, data []byte) {
	t.Helper()
	got, err := s.Get(c)
	if err != nil {
		t.Fatalf("Get %s: %v", c, err)
	}
	equalBytes(t, "Get "+c.String(), got, data)
}

func packOf(t *testing.T, s *Store, c cid.Cid) uint32 {
	t.Helper()
	rec := record(t, s, c)
	if !rec.packed {
		t.Fatalf("block %s is not in a pack", c)
	}
	return rec.pack
}

// TestPackConcurrentPuts: many writers store blocks of mixed sizes at once
// into small packs, rotating while they write; after a crash every block
// is whole and nothing is taken for lost, and again after a clean reopen.
func TestPackConcurrentPuts(t *testing.T) {
	dir := t.TempDir()
	const limit = 2 << 20
	s := openPacks(t, dir, limit)
	sizes := []int{1 << 20, 5000, 300_000, 1, ioAlign, 700_000}
	var datas [][]byte
	for i := range 60 {
		datas = append(datas, randBytes(uint64(1000+i), sizes[i%len(sizes)]))
	}
	sess := Session{ID: []byte("up"), Bag: "b", Expiry: time.Now().Add(time.Hour)}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := chunker.ChunkCID(datas[i])
				var err error
				if i%2 == 0 {
					err = s.Put(c, datas[i])
				} else {
					err = s.PutInSession(sess, c, datas[i])
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range datas {
		work <- i
	}
	close(work)
	wg.Wait()
	packs := map[uint32]bool{}
	var total uint64
	for _, d := range datas {
		c := chunker.ChunkCID(d)
		rec := record(t, s, c)
		packs[rec.pack] = true
		total += uint64(len(d))
		if rec.off > 0 && rec.off+recordLen(rec.size) > limit {
			t.Fatalf("record of %s ends at %d, past the pack limit %d", c, rec.off+recordLen(rec.size), limit)
		}
	}
	if len(packs) < 10 {
		t.Fatalf("%d packs for %d bytes at a %d-byte limit", len(packs), total, limit)
	}
	sealed, err := s.sealedPacks()
	if err != nil || len(sealed) != len(packs)-1 {
		t.Fatalf("%d packs sealed (%v), want all %d but the active one", len(sealed), err, len(packs))
	}
	crash(t, s)

	for _, how := range []string{"after the crash", "after a clean close"} {
		s = openPacks(t, dir, limit)
		for _, d := range datas {
			checkGet(t, s, chunker.ChunkCID(d), d)
		}
		if st := s.Stats(); st.Blocks != uint64(len(datas)) || st.Bytes != total {
			t.Fatalf("Stats %s = %+v, want %d blocks of %d bytes", how, st, len(datas), total)
		}
		if n, _ := s.SessionBytes(recoveredSession); n != 0 {
			t.Fatalf("recovery session %s holds %d bytes; nothing was unindexed", how, n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPackRotation: the pack being written is rotated before a record
// would take it past the limit; a block larger than the limit gets a pack
// of its own; rotated packs are sealed.
func TestPackRotation(t *testing.T) {
	const limit = 64 << 10
	s := openPacks(t, t.TempDir(), limit)
	var cs []cid.Cid
	for i := range 6 {
		cs = append(cs, putBlock(t, s, randBytes(uint64(60+i), 20_000))) // 24 KiB records
	}
	big := putBlock(t, s, randBytes(70, 100_000))
	after := putBlock(t, s, randBytes(71, 20_000))
	want := []uint32{1, 1, 2, 2, 3, 3}
	for i, c := range cs {
		if got := packOf(t, s, c); got != want[i] {
			t.Fatalf("block %d in pack %d, want %d", i, got, want[i])
		}
	}
	if packOf(t, s, big) != 4 || packOf(t, s, after) != 5 {
		t.Fatalf("big block in pack %d, the next in %d; want 4 and 5", packOf(t, s, big), packOf(t, s, after))
	}
	for n := uint32(1); n <= 3; n++ {
		st, err := os.Stat(s.packs.path(n))
		if err != nil || st.Size() > limit {
			t.Fatalf("pack %d: %v, %v; want at most %d bytes", n, st, err, limit)
		}
	}
	sealed, err := s.sealedPacks()
	if err != nil || len(sealed) != 4 || !sealed[1] || !sealed[4] || sealed[5] {
		t.Fatalf("sealed packs %v, %v; want 1-4", sealed, err)
	}
}

// TestDuplicateConcurrentPut: writers racing to Put one block each write
// its record, and all but the winner's are punched out at once: one live
// record is left, before and after a crash.
func TestDuplicateConcurrentPut(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	data := randBytes(90, 256<<10)
	c := chunker.ChunkCID(data)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := s.Put(c, data); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := recordsOf(t, s, c); n != 1 {
		t.Fatalf("%d records of one block after racing Puts; want 1", n)
	}
	checkGet(t, s, c, data)
	crash(t, s)
	s = openTest(t, dir)
	if n := recordsOf(t, s, c); n != 1 {
		t.Fatalf("%d records after the crash; want 1", n)
	}
	if st := s.Stats(); st.Blocks != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestPackRecordQuarantined: a pack record whose bytes no longer match is
// quarantined: its bytes copied to quarantine/<cid>, its space punched, its
// neighbours intact; a good copy repairs it.
func TestPackRecordQuarantined(t *testing.T) {
	s := openTest(t, t.TempDir())
	a, b := randBytes(95, 500_000), randBytes(96, 500_000)
	ca, cb := putBlock(t, s, a), putBlock(t, s, b)
	damaged := bytes.Clone(a)
	damaged[12345] ^= 0x10
	overwrite(t, s, ca, damaged)
	if _, err := s.Get(ca); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged record: %v, want ErrCorrupt", err)
	}
	aside, err := os.ReadFile(filepath.Join(s.dir, quarantineDir, ca.String()))
	if err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "quarantined copy", aside, damaged)
	checkNoRecord(t, s, ca)
	checkGet(t, s, cb, b)
	if st := s.Stats(); st.Blocks != 1 || st.Quarantined != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := s.Put(ca, a); err != nil {
		t.Fatal(err)
	}
	checkGet(t, s, ca, a)
	if q, _ := s.Quarantined(); len(q) != 0 {
		t.Fatalf("still quarantined after the repair: %v", q)
	}
}

// TestLegacyBlockFilesStillServed: a store written before packs (blocks in
// blocks/<shard>/<cid>, index entries without a location) opens without a
// migration: its blocks are read, ranged, served, located, quarantined and
// deleted as files, survive a crash recovery, while new blocks go to packs.
func TestLegacyBlockFilesStillServed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	var cs []cid.Cid
	var datas [][]byte
	for i := range 4 {
		d := randBytes(uint64(100+i), 50_000*(i+1))
		c := chunker.ChunkCID(d)
		putLegacy(t, s, c, d, time.Unix(1_700_000_000, 0), i == 0)
		cs, datas = append(cs, c), append(datas, d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, packsDir)); err != nil { // an old store has none
		t.Fatal(err)
	}

	s = openTest(t, dir)
	for i, c := range cs {
		checkGet(t, s, c, datas[i])
		got, err := s.GetFast(c)
		if err != nil {
			t.Fatal(err)
		}
		equalBytes(t, "GetFast", got, datas[i])
		part, size, err := s.ReadRange(c, 1000, 5000)
		if err != nil || size != uint64(len(datas[i])) {
			t.Fatalf("ReadRange: %d, %v", size, err)
		}
		equalBytes(t, "ReadRange", part, datas[i][1000:6000])
		if path, off, n, err := s.Locate(c); err != nil || path != s.legacyPath(c) || off != 0 || n != int64(len(datas[i])) {
			t.Fatalf("Locate = %s, %d, %d, %v; want the legacy file", path, off, n, err)
		}
	}
	fresh := randBytes(110, 70_000)
	cf := putBlock(t, s, fresh)
	if path, _, _, _ := s.Locate(cf); filepath.Dir(path) != filepath.Join(dir, packsDir) {
		t.Fatalf("new block stored in %s, want a pack", path)
	}
	if err := s.Delete(cs[1]); err != nil {
		t.Fatal(err)
	}
	checkNoRecord(t, s, cs[1])
	damaged := bytes.Clone(datas[2])
	damaged[7] ^= 1
	overwrite(t, s, cs[2], damaged)
	if _, err := s.Get(cs[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged legacy file: %v", err)
	}
	if aside, err := os.ReadFile(filepath.Join(dir, quarantineDir, cs[2].String())); err != nil || !bytes.Equal(aside, damaged) {
		t.Fatalf("legacy file not moved to the quarantine: %v", err)
	}
	checkNoRecord(t, s, cs[2])
	crash(t, s)

	s = openTest(t, dir)
	checkGet(t, s, cs[0], datas[0])
	checkGet(t, s, cs[3], datas[3])
	checkGet(t, s, cf, fresh)
	if st := s.Stats(); st.Blocks != 3 || st.Quarantined != 1 {
		t.Fatalf("Stats = %+v; want 2 legacy blocks and the new one", st)
	}
}

// TestPackNames: pack file names are 8 digits, parsed back; anything else
// in packs/ is not a pack.
func TestPackNames(t *testing.T) {
	for _, n := range []uint32{1, 42, 99_999_999} {
		got, ok := parsePackName(packName(n))
		if !ok || got != n {
			t.Fatalf("parsePackName(%q) = %d, %v", packName(n), got, ok)
		}
	}
	for _, name := range []string{"1.pack", "0000000x.pack", "00000001.tmp", fmt.Sprintf("%09d.pack", 1)} {
		if _, ok := parsePackName(name); ok {
			t.Fatalf("%q parsed as a pack", name)
		}
	}
}

// TestPackFilesOpenBounded: a store keeps at most maxOpen packs open for
// reading, closing those no reader holds, while readers and deletions
// work on many packs at once: every block not deleted reads back whole,
// none is taken for corrupt.
func TestPackFilesOpenBounded(t *testing.T) {
	dir := t.TempDir()
	const limit = 2 * (100_000 + 2*hdrSize)
	s := openPacks(t, dir, limit)
	var cs []cid.Cid
	var datas [][]byte
	for i := range 24 {
		d := randBytes(uint64(200+i), 100_000)
		datas = append(datas, d)
		cs = append(cs, putBlock(t, s, d))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPacks(t, dir, limit)
	s.packs.maxOpen = 4
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 * len(cs) {
				i := (k*7 + g*5) % len(cs)
				got, err := s.GetFast(cs[i])
				switch {
				case i%2 == 1 && errors.Is(err, ErrNotFound):
				case err != nil:
					t.Errorf("GetFast of block %d: %v", i, err)
				default:
					if !bytes.Equal(got, datas[i]) {
						t.Errorf("block %d read back wrong", i)
					}
					s.Recycle(got)
				}
			}
		}()
	}
	for i := 1; i < len(cs); i += 2 {
		if err := s.Delete(cs[i]); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if q, _ := s.Quarantined(); len(q) != 0 {
		t.Fatalf("%d blocks quarantined by reads racing with closes", len(q))
	}
	for i := 0; i < len(cs); i += 2 {
		checkGet(t, s, cs[i], datas[i])
		s.packs.mu.Lock()
		open := len(s.packs.open)
		s.packs.mu.Unlock()
		if open > s.packs.maxOpen {
			t.Fatalf("%d packs open, bound %d", open, s.packs.maxOpen)
		}
	}
}

// Locate finds a block's bytes on disk: here the first block of a new
// store, right after its record's 4 KiB header in the first pack.
func ExampleStore_Locate() {
	dir, _ := os.MkdirTemp("", "blocks")
	defer os.RemoveAll(dir)
	bs, err := Open(dir, WithLogger(discard))
	if err != nil {
		panic(err)
	}
	defer bs.Close()
	data := []byte("a chunk of a data object")
	c := chunker.ChunkCID(data)
	if err := bs.Put(c, data); err != nil {
		panic(err)
	}
	path, off, size, err := bs.Locate(c)
	if err != nil {
		panic(err)
	}
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	buf := make([]byte, size)
	_, err = f.ReadAt(buf, off)
	rel, _ := filepath.Rel(dir, path)
	fmt.Println(rel, off, size, string(buf), err)
	// Output: packs/00000001.pack 4096 24 a chunk of a data object <nil>
}
