//go:build linux

package blockstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// blockSizes are the block lengths the direct I/O tests store: empty, around
// the alignment, around 1 MiB and the largest chunk.
var blockSizes = []int{0, 1, ioAlign - 1, ioAlign, ioAlign + 1, 1 << 20, 1<<20 + 5, chunker.MaxChunkSize}

// acceptsDirectIO reports whether the file system of dir lets a file be
// opened with O_DIRECT.
func acceptsDirectIO(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "probe-direct"), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_DIRECT, 0o644)
	if errors.Is(err, syscall.EINVAL) {
		return false
	}
	if err != nil {
		t.Fatalf("probe direct I/O in %s: %v", dir, err)
	}
	_ = f.Close()
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}
	return true
}

// openDirect opens the store in dir with direct I/O on or off.
func openDirect(t *testing.T, dir string, direct bool) *Store {
	t.Helper()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), WithDirectIO(direct))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// checkBlockFile fails unless the store returns data for c and c's record
// on disk holds exactly data, aligned, followed by zeros to the next
// alignment boundary: nothing left behind by a reused staging buffer.
func checkBlockFile(t *testing.T, s *Store, c cid.Cid, data []byte) {
	t.Helper()
	got, err := s.Get(c)
	if err != nil {
		t.Fatalf("Get %d-byte block: %v", len(data), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Get %d-byte block returned %d bytes that differ", len(data), len(got))
	}
	path, off, size, err := s.Locate(c)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) || off%ioAlign != 0 {
		t.Fatalf("a %d-byte block is located as %d bytes at %d", len(data), size, off)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw := make([]byte, roundUp(len(data)))
	if _, err := f.ReadAt(raw, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw[:len(data)], data) {
		t.Fatalf("record of a %d-byte block holds other bytes", len(data))
	}
	if !bytes.Equal(raw[len(data):], make([]byte, len(raw)-len(data))) {
		t.Fatalf("padding of a %d-byte block's record is not zeros", len(data))
	}
}

// checkTmpEmpty fails if anything but pack files lies in packs/, or a temp
// file in tmp/.
func checkTmpEmpty(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, packsDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := parsePackName(e.Name()); !ok && e.Name() != storeIDFile {
			t.Fatalf("%s in %s", e.Name(), packsDir)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(s.dir, tmpDir)); len(left) != 0 {
		t.Fatalf("%d temp files left in %s", len(left), tmpDir)
	}
}

// TestBlockFilesRoundTrip proves that blocks of every length around the
// alignment, up to the largest chunk, come back byte-exact from pack records
// holding exactly them (zero padding), with direct I/O on and off, written in ascending and
// then descending size (so pooled staging buffers larger than the block are
// reused), and across Close and Open in the same and in the other mode. With
// direct I/O on, a file system that takes it (ext4) must not have turned it
// off.
func TestBlockFilesRoundTrip(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			dir := t.TempDir()
			wantDirect := direct && acceptsDirectIO(t, dir)
			s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), WithDirectIO(direct))
			if err != nil {
				t.Fatal(err)
			}
			type block struct {
				c    cid.Cid
				data []byte
			}
			var blocks []block
			var total uint64
			put := func(seed uint64, n int) {
				data := randBytes(seed, n)
				c := chunker.ChunkCID(data)
				if err := s.Put(c, data); err != nil {
					t.Fatalf("Put %d bytes: %v", n, err)
				}
				checkBlockFile(t, s, c, data)
				blocks = append(blocks, block{c, data})
				total += uint64(n)
			}
			for i, n := range blockSizes {
				put(uint64(100+i), n)
			}
			for i := len(blockSizes) - 1; i >= 0; i-- {
				if blockSizes[i] == 0 {
					continue // one empty block only: all have one CID
				}
				put(uint64(200+i), blockSizes[i])
			}
			if got := s.files.direct.Load(); got != wantDirect {
				t.Fatalf("direct I/O is %v after the writes, want %v", got, wantDirect)
			}
			checkTmpEmpty(t, s)
			if st := s.Stats(); st.Blocks != uint64(len(blocks)) || st.Bytes != total {
				t.Fatalf("Stats = %+v, want %d blocks of %d bytes", st, len(blocks), total)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, reopenDirect := range []bool{direct, !direct} {
				s := openDirect(t, dir, reopenDirect)
				for _, b := range blocks {
					checkBlockFile(t, s, b.c, b.data)
				}
				if st := s.Stats(); st.Blocks != uint64(len(blocks)) || st.Bytes != total {
					t.Fatalf("Stats after reopening (direct=%v) = %+v, want %d blocks of %d bytes", reopenDirect, st, len(blocks), total)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// residentPages counts the pages of the file at path that are in the page
// cache (mincore of a mapping, which faults nothing in).
func residentPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := int(st.Size())
	if size == 0 {
		return 0
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (size+page-1)/page)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestDirectIOSkipsPageCache proves direct I/O is really used: blocks
// written and read back with it leave no page of their pack in the page
// cache, where buffered writes leave them all in.
func TestDirectIOSkipsPageCache(t *testing.T) {
	dir := t.TempDir()
	if !acceptsDirectIO(t, dir) {
		t.Skip("the file system of the test directory refuses direct I/O")
	}
	direct := openDirect(t, filepath.Join(dir, "direct"), true)
	buffered := openDirect(t, filepath.Join(dir, "buffered"), false)
	for i, n := range []int{1 << 20, 1<<20 + 5, chunker.MaxChunkSize} {
		data := randBytes(uint64(300+i), n)
		c := chunker.ChunkCID(data)
		pages := (n + os.Getpagesize() - 1) / os.Getpagesize()
		const tail = 0 // records are whole aligned blocks: nothing is cached
		if err := direct.Put(c, data); err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Get(c); err != nil {
			t.Fatal(err)
		}
		path, _, _, err := direct.Locate(c)
		if err != nil {
			t.Fatal(err)
		}
		r := residentPages(t, path)
		if r > tail {
			t.Errorf("%d-byte block written and read with direct I/O: %d of %d pages cached, want at most %d", n, r, pages, tail)
		}
		if err := buffered.Put(c, data); err != nil {
			t.Fatal(err)
		}
		bpath, _, _, err := buffered.Locate(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d-byte block: %d of %d pages of the pack cached written direct, %d written buffered", n, r, pages, residentPages(t, bpath))
	}
}

// TestDirectIOFallbackOnTmpfs proves a store on tmpfs (/dev/shm) works with
// direct I/O asked for, and that it keeps direct I/O exactly when the
// kernel's tmpfs accepts O_DIRECT (Linux 6.6 and later) and falls back to
// buffered I/O, turning it off, where it refuses it.
func TestDirectIOFallbackOnTmpfs(t *testing.T) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	const tmpfsMagic = 0x01021994
	if fs.Type != tmpfsMagic {
		t.Skipf("/dev/shm is not tmpfs (magic %#x)", fs.Type)
	}
	dir, err := os.MkdirTemp("/dev/shm", "blockstore-test-")
	if err != nil {
		t.Skipf("cannot write in /dev/shm: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	accepts := acceptsDirectIO(t, dir)
	t.Logf("tmpfs accepts O_DIRECT: %v", accepts)

	s := openDirect(t, dir, true)
	var put []cid.Cid
	var datas [][]byte
	for i, n := range []int{ioAlign + 1, 1 << 20, 0} {
		data := randBytes(uint64(400+i), n)
		c := chunker.ChunkCID(data)
		if err := s.Put(c, data); err != nil {
			t.Fatalf("Put %d bytes on tmpfs: %v", n, err)
		}
		checkBlockFile(t, s, c, data)
		put = append(put, c)
		datas = append(datas, data)
	}
	if got := s.files.direct.Load(); got != accepts {
		t.Fatalf("direct I/O on tmpfs is %v after the writes; tmpfs accepts O_DIRECT: %v", got, accepts)
	}
	checkTmpEmpty(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDirect(t, dir, true)
	for i, c := range put {
		checkBlockFile(t, s, c, datas[i])
	}
}

// TestDirectWriteRefusedFallsBack proves the fallback when the kernel
// refuses a direct write itself (EINVAL from write, as a file system that
// opens O_DIRECT files but cannot do aligned I/O gives): the refusal is
// provoked with a misaligned staging buffer slipped into the pool. The Put
// still succeeds, writes the block's record buffered, exact and aligned, and
// direct I/O is off for the store from then on.
func TestDirectWriteRefusedFallsBack(t *testing.T) {
	dir := t.TempDir()
	if !acceptsDirectIO(t, dir) {
		t.Skip("the file system of the test directory refuses direct I/O")
	}
	s := openDirect(t, dir, true)
	holdHugeStaging(t) // records come from the pool the bad buffer goes in
	type block struct {
		c    cid.Cid
		data []byte
	}
	var blocks []block
	// The pool may drop what it is given (it does so at random under the
	// race detector), so offer a bad buffer before each Put until one is
	// taken.
	for i := 0; s.files.direct.Load(); i++ {
		if i == 200 {
			t.Fatal("no Put used the misaligned staging buffer, or the kernel accepted it")
		}
		// Big enough for the record (header and data) of the block below.
		raw := make([]byte, 4*ioAlign)
		bad := raw[1 : 1+3*ioAlign : 1+3*ioAlign]
		s.files.putBuf(&bad)
		data := randBytes(uint64(500+i), ioAlign+904)
		c := chunker.ChunkCID(data)
		if err := s.Put(c, data); err != nil {
			t.Fatalf("Put with a refused direct write: %v", err)
		}
		blocks = append(blocks, block{c, data})
	}
	// Later blocks go buffered; a large one needs no staging buffer.
	for i, n := range []int{1 << 20, 3} {
		data := randBytes(uint64(600+i), n)
		c := chunker.ChunkCID(data)
		if err := s.Put(c, data); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, block{c, data})
	}
	if s.files.direct.Load() {
		t.Fatal("direct I/O turned back on")
	}
	for _, b := range blocks {
		checkBlockFile(t, s, b.c, b.data)
	}
	checkTmpEmpty(t, s)
}

// TestReadShortFile proves a pack read returns what a pack holds when it is
// cut short inside a block's record, with and without direct I/O, across the
// alignment, and that Get then reports the block corrupt and quarantines it
// rather than returning short or padded bytes.
func TestReadShortFile(t *testing.T) {
	for _, direct := range []bool{true, false} {
		for _, tc := range []struct{ size, cut int }{
			{10_000, 3},
			{2 * ioAlign, 2},
			{ioAlign + 1, 4},
			{ioAlign + 3, 5}, // now shorter than one aligned unit
			{5, 5},           // now empty
		} {
			t.Run(fmt.Sprintf("direct=%v/%d-%d", direct, tc.size, tc.cut), func(t *testing.T) {
				s := openDirect(t, t.TempDir(), direct)
				data := randBytes(uint64(tc.size), tc.size)
				c := chunker.ChunkCID(data)
				if err := s.Put(c, data); err != nil {
					t.Fatal(err)
				}
				path, off, _, err := s.Locate(c)
				if err != nil {
					t.Fatal(err)
				}
				rec := record(t, s, c)
				short := len(data) - tc.cut
				if err := os.Truncate(path, off+int64(short)); err != nil {
					t.Fatal(err)
				}
				got, err := s.packs.read(rec.pack, rec.off, uint64(len(data)), false)
				if err != nil {
					t.Fatalf("read of a truncated file: %v", err)
				}
				if !bytes.Equal(got, data[:short]) {
					t.Fatalf("read of a file truncated to %d bytes returned %d bytes, want the first %d written", short, len(got), short)
				}
				if _, err := s.Get(c); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Get of a truncated block: %v, want ErrCorrupt", err)
				}
				if ok, _ := s.Has(c); ok {
					t.Fatal("truncated block still held")
				}
				q, err := s.Quarantined()
				if err != nil || len(q) != 1 || !q[0].Equals(c) {
					t.Fatalf("Quarantined = %v, %v; want [%s]", q, err, c)
				}
				checkNoRecord(t, s, c)
				aside, err := os.ReadFile(filepath.Join(s.dir, quarantineDir, c.String()))
				if err != nil || !bytes.Equal(aside, data[:short]) {
					t.Fatalf("quarantined file: %d bytes, %v; want the %d truncated bytes", len(aside), err, short)
				}
				if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 || st.Quarantined != 1 {
					t.Fatalf("Stats = %+v, want no blocks and one quarantined", st)
				}
			})
		}
	}
}

// TestAlignedBuffers proves staging buffers start on an ioAlign boundary and
// are rounded up to a multiple of it, whether freshly allocated or reused
// from the pool for a smaller block.
func TestAlignedBuffers(t *testing.T) {
	aligned := func(b []byte) bool { return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%ioAlign == 0 }
	for _, n := range append([]int{2, 511, 512, 513, 8191, 3*ioAlign + 17}, blockSizes...) {
		want := (n + ioAlign - 1) / ioAlign * ioAlign
		for range 4 { // several allocations: Go's own alignment varies
			b := alignedAlloc(n)
			if len(b) != want || cap(b) != want {
				t.Fatalf("alignedAlloc(%d): len %d cap %d, want %d", n, len(b), cap(b), want)
			}
			if n > 0 && !aligned(b) {
				t.Fatalf("alignedAlloc(%d) at %p is not %d-aligned", n, unsafe.SliceData(b), ioAlign)
			}
		}
	}
	f := newFileIO(true)
	for _, n := range []int{chunker.MaxChunkSize, 1 << 20, ioAlign + 1, 1} {
		p := f.alignedBuf(n)
		want := (n + ioAlign - 1) / ioAlign * ioAlign
		if len(*p) != want || !aligned(*p) {
			t.Fatalf("alignedBuf(%d): len %d at %p, want len %d, %d-aligned", n, len(*p), unsafe.SliceData(*p), want, ioAlign)
		}
		f.putBuf(p)
	}
}

// oversize is the length the oversize tests give a block file: sparse, just
// over maxBlockFile, so no block could fill it.
const oversize = 65 << 20

// allocated returns how many heap bytes fn allocated (runtime.MemStats'
// TotalAlloc before and after), which the other goroutines of the test
// binary barely add to.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestOversizeBlockFileIsQuarantined proves that a held legacy block whose
// file has grown past maxBlockFile (a 5000-byte block truncated up to a sparse 65 MiB)
// is reported corrupt by Get and quarantined, with direct I/O on and off:
// Has is false, Quarantined lists it, its file is moved whole to quarantine/,
// Stats count no block and one quarantined, and Putting the good bytes
// repairs it.
func TestOversizeBlockFileIsQuarantined(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			dir := t.TempDir()
			wantDirect := direct && acceptsDirectIO(t, dir)
			s := openDirect(t, dir, direct)
			data := randBytes(700, 5000)
			c := chunker.ChunkCID(data)
			// Only a legacy block file can outgrow its index entry.
			putLegacy(t, s, c, data, time.Now(), false)
			path := s.legacyPath(c)
			if err := os.Truncate(path, oversize); err != nil {
				t.Fatal(err)
			}

			if got, err := s.Get(c); !errors.Is(err, ErrCorrupt) || got != nil {
				t.Fatalf("Get of an oversize block file = %d bytes, %v; want nil, ErrCorrupt", len(got), err)
			}
			if ok, err := s.Has(c); err != nil || ok {
				t.Fatalf("Has of the oversize block = %v, %v; want false", ok, err)
			}
			if _, err := s.Get(c); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after the quarantine: %v, want ErrNotFound", err)
			}
			q, err := s.Quarantined()
			if err != nil || len(q) != 1 || !q[0].Equals(c) {
				t.Fatalf("Quarantined = %v, %v; want [%s]", q, err, c)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("oversize block's file still in place: %v", err)
			}
			aside := filepath.Join(s.dir, quarantineDir, c.String())
			if st, err := os.Stat(aside); err != nil || st.Size() != oversize {
				t.Fatalf("quarantined file: %v, %v; want %d bytes", st, err, oversize)
			}
			if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 || st.Quarantined != 1 {
				t.Fatalf("Stats = %+v, want no blocks and one quarantined", st)
			}

			if err := s.Put(c, data); err != nil {
				t.Fatalf("Put of the good bytes: %v", err)
			}
			checkBlockFile(t, s, c, data)
			if got := s.files.direct.Load(); got != wantDirect {
				t.Fatalf("direct I/O is %v, want %v", got, wantDirect)
			}
			if q, err := s.Quarantined(); err != nil || len(q) != 0 {
				t.Fatalf("Quarantined after the repair = %v, %v; want none", q, err)
			}
			if _, err := os.Stat(aside); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("quarantined file kept after the repair: %v", err)
			}
			if st := s.Stats(); st.Blocks != 1 || st.Bytes != 5000 || st.Quarantined != 0 {
				t.Fatalf("Stats after the repair = %+v, want one block of 5000 bytes", st)
			}
		})
	}
}

// TestOversizeUnindexedFileRemovedOnRecovery proves that Open after an
// unclean shutdown (no CLEAN marker) removes a block file the index does not
// name that is over maxBlockFile (a sparse 65 MiB file named with a valid
// CID, in its shard) instead of failing, with direct I/O on and off, and
// still does the rest of the reconciliation: an indexed block stays, an
// unindexed whole block is indexed again, and Stats count exactly those two.
func TestOversizeUnindexedFileRemovedOnRecovery(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			dir := t.TempDir()
			s := openDirect(t, dir, direct)
			kept, lost := randBytes(710, 4000), randBytes(711, 5000)
			for _, d := range [][]byte{kept, lost} {
				if err := s.Put(chunker.ChunkCID(d), d); err != nil {
					t.Fatal(err)
				}
			}
			// The index entry of lost is lost in the crash; its file is
			// whole.
			if err := s.db.Delete(blockKey(chunker.ChunkCID(lost)), nil); err != nil {
				t.Fatal(err)
			}
			crash(t, s)
			big := chunker.ChunkCID(randBytes(712, 5000))
			path := s.legacyPath(big)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, oversize); err != nil {
				t.Fatal(err)
			}

			s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), WithDirectIO(direct))
			if err != nil {
				t.Fatalf("Open after an unclean shutdown with a %d-byte unindexed block file: %v", oversize, err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("oversize unindexed file survived Open: %v", err)
			}
			if ok, err := s.Has(big); err != nil || ok {
				t.Fatalf("Has of the oversize file's CID = %v, %v; want false", ok, err)
			}
			if q, err := s.Quarantined(); err != nil || len(q) != 0 {
				t.Fatalf("Quarantined = %v, %v; want none", q, err)
			}
			for _, d := range [][]byte{kept, lost} {
				checkBlockFile(t, s, chunker.ChunkCID(d), d)
			}
			if n, err := s.SessionBytes(recoveredSession); err != nil || n != 5000 {
				t.Fatalf("recovery session holds %d bytes, %v; want the 5000 of the re-indexed block", n, err)
			}
			if st := s.Stats(); st.Blocks != 2 || st.Bytes != 9000 || st.Quarantined != 0 {
				t.Fatalf("Stats = %+v, want 2 blocks of 9000 bytes", st)
			}
		})
	}
}

// TestOversizeBlockFileReadIsBounded proves that maxBlockFile bounds what
// reading an oversize legacy block file allocates, with direct I/O on and off: read
// refuses a sparse 65 MiB file with an error wrapping errBlockFileTooLarge
// and allocates less than maxBlockFile doing so, and so do Get of a held
// block whose file is that large (which quarantines it) and Open after an
// unclean shutdown that finds such a file unindexed (which removes it). A
// corrupt file of any size must not make the store allocate its size.
func TestOversizeBlockFileReadIsBounded(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			dir := t.TempDir()
			s := openDirect(t, dir, direct)
			data := randBytes(720, 5000)
			c := chunker.ChunkCID(data)
			putLegacy(t, s, c, data, time.Now(), false)
			path := s.legacyPath(c)
			if err := os.Truncate(path, oversize); err != nil {
				t.Fatal(err)
			}

			var got []byte
			var err error
			n := allocated(func() { got, err = s.files.read(path) })
			if !errors.Is(err, errBlockFileTooLarge) || got != nil {
				t.Errorf("read of a %d-byte block file = %d bytes, %v; want nil, errBlockFileTooLarge", oversize, len(got), err)
			}
			if n >= maxBlockFile {
				t.Errorf("read of a %d-byte block file allocated %d bytes, want less than maxBlockFile (%d)", oversize, n, maxBlockFile)
			}

			n = allocated(func() { got, err = s.Get(c) })
			if !errors.Is(err, ErrCorrupt) || got != nil {
				t.Fatalf("Get of an oversize block file = %d bytes, %v; want nil, ErrCorrupt", len(got), err)
			}
			if n >= maxBlockFile {
				t.Errorf("Get of a %d-byte block file allocated %d bytes, want less than maxBlockFile (%d)", oversize, n, maxBlockFile)
			}

			// The same file, unindexed, found by Open after a crash.
			crash(t, s)
			if err := os.Rename(filepath.Join(dir, quarantineDir, c.String()), path); err != nil {
				t.Fatal(err)
			}
			var openErr error
			n = allocated(func() {
				s, openErr = Open(dir, WithSessionExpiry(0), WithLogger(discard), WithDirectIO(direct))
			})
			if openErr != nil {
				t.Fatalf("Open after an unclean shutdown: %v", openErr)
			}
			t.Cleanup(func() { _ = s.Close() })
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("oversize unindexed file survived Open: %v", err)
			}
			if n >= maxBlockFile {
				t.Errorf("Open finding a %d-byte unindexed block file allocated %d bytes, want less than maxBlockFile (%d)", oversize, n, maxBlockFile)
			}
		})
	}
}

// TestOversizeBlocksRefused: the bound on a legacy block file holds for
// packs and Put too. A pack's index entry claiming more than maxBlockFile
// is refused by the pack read without allocating its size, and Get
// quarantines the block as it does an oversize file; a record header
// claiming that much is garbage to recovery; every put refuses a block
// that large before hashing it (ErrBlockTooLarge), writing nothing.
func TestOversizeBlocksRefused(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(730, 5000)
	c := putBlock(t, s, data)
	rec := record(t, s, c)
	rec.size = oversize
	setRecord(t, s, c, rec.encode())

	var err error
	n := allocated(func() { _, err = s.packs.read(rec.pack, rec.off, rec.size, false) })
	if !errors.Is(err, errBlockFileTooLarge) {
		t.Errorf("pack read of an entry of %d bytes: %v, want errBlockFileTooLarge", oversize, err)
	}
	if n >= maxBlockFile {
		t.Errorf("pack read of an entry of %d bytes allocated %d bytes, want less than maxBlockFile (%d)", oversize, n, maxBlockFile)
	}
	if got, err := s.Get(c); !errors.Is(err, ErrCorrupt) || got != nil {
		t.Fatalf("Get through an oversize entry = %d bytes, %v; want nil, ErrCorrupt", len(got), err)
	}
	if !quarantined(t, s, c) {
		t.Fatal("the block of an oversize entry is not quarantined")
	}

	p, err := s.packs.acquire(rec.pack)
	if err != nil {
		t.Fatal(err)
	}
	defer s.packs.release(p)
	hdr := make([]byte, hdrSize)
	encodeHeader(hdr, c, oversize, 0)
	if _, err := p.f.WriteAt(hdr, rec.off); err != nil {
		t.Fatal(err)
	}
	var r recovery
	if next, whole, err := s.recoverRecord(&r, p, rec.off, rec.off+(128<<20)); err != nil || whole || next != rec.off+hdrSize {
		t.Fatalf("recoverRecord of a header claiming %d bytes = %d, %v, %v; want garbage: %d, false, nil", oversize, next, whole, err, rec.off+hdrSize)
	}

	// Every put refuses it before it hashes it: under a CID the bytes do
	// not hash to, the error is ErrBlockTooLarge, not ErrCIDMismatch (and
	// the test does not hash 64 MiB).
	big := make([]byte, maxBlockFile+1)
	cb := chunker.ChunkCID([]byte("not hashed"))
	before := packBytes(t, s)
	sess := Session{ID: []byte("s"), Bag: "b", Expiry: time.Now().Add(time.Hour)}
	for name, put := range map[string]func() error{
		"Put":                  func() error { return s.Put(cb, big) },
		"PutInSession":         func() error { return s.PutInSession(sess, cb, big) },
		"PutVerifiedInSession": func() error { return s.PutVerifiedInSession(sess, cb, big) },
	} {
		err := put()
		if !errors.Is(err, ErrBlockTooLarge) || errors.Is(err, ErrCIDMismatch) {
			t.Fatalf("%s of a block of %d bytes: %v, want ErrBlockTooLarge", name, len(big), err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("(%d bytes)", maxBlockFile)) {
			t.Errorf("%s of an oversize block: %q does not name the limit, %d bytes", name, err, maxBlockFile)
		}
		if ok, _ := s.Has(cb); ok || packBytes(t, s) != before {
			t.Fatalf("%s of an oversize block left it held (%v) or the packs grown (%d bytes, were %d)", name, ok, packBytes(t, s), before)
		}
	}
}
