package blockstore

// Failures of the writes a power loss can undo (the pack's fdatasync, the
// synced index write), through the test hooks of hooks.go.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
)

// packBytes is the total size of the pack files on disk.
func packBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	_, sizes, err := s.packs.list()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sz := range sizes {
		n += sz
	}
	return n
}

// TestSessionIndexSyncFailureKeepsRecord: a session put whose grouped index
// write reached goleveldb's journal but failed its sync is refused, yet its
// entry comes back on restart, so its record must not have been punched:
// the block reads whole, not as zeros (quarantined).
func TestSessionIndexSyncFailureKeepsRecord(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	hook := func(write func() error, b *leveldb.Batch) error {
		if err := write(); err != nil {
			return err
		}
		if fail.Load() {
			return syscall.EIO // written to the journal; its sync "failed"
		}
		return nil
	}
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withIndexWrite(hook))
	if err != nil {
		t.Fatal(err)
	}
	sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
	data := randBytes(40, 100_000)
	c := chunker.ChunkCID(data)
	fail.Store(true)
	if err := s.PutInSession(sess, c, data); !errors.Is(err, syscall.EIO) {
		t.Fatalf("PutInSession with a failing index sync: %v, want EIO", err)
	}
	fail.Store(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	if ok, _ := s.Has(c); !ok {
		t.Fatal("the journaled entry did not come back: the test no longer models goleveldb")
	}
	checkGet(t, s, c, data)
}

// TestMissingIndexRebuiltFromPacks: a store whose index/ is gone but whose
// packs and legacy block files are there is not a new store: Open re-indexes
// every record and file that verifies (none goes in the recovery session,
// which would expire them), and unlinks no pack, even after a clean close.
func TestMissingIndexRebuiltFromPacks(t *testing.T) {
	dir := t.TempDir()
	s := openPacks(t, dir, 256<<10)
	want := map[cid.Cid][]byte{}
	for i := range 6 {
		data := randBytes(uint64(50+i), 100_000)
		want[putBlock(t, s, data)] = data
	}
	legacy := randBytes(60, 5000)
	cl := chunker.ChunkCID(legacy)
	putLegacy(t, s, cl, legacy, time.Now(), false)
	want[cl] = legacy
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}

	for range 2 { // rebuilt, then opened again as it was rebuilt
		s = openPacks(t, dir, 256<<10)
		for c, data := range want {
			checkGet(t, s, c, data)
		}
		if ids, _ := s.SessionBlocks(recoveredSession); len(ids) != 0 {
			t.Fatalf("rebuilt blocks put in the recovery session (to expire): %v", ids)
		}
		if st := s.Stats(); st.Blocks != uint64(len(want)) {
			t.Fatalf("Stats = %+v, want %d blocks", st, len(want))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStaleEntryOfMissingPackDropped: an index entry naming a pack that is
// gone (lost, removed by hand) is dropped on a clean Open, so a later pack
// can never take that number and put another block's record under it (the
// stale entry then served that block's bytes, and its quarantine punched
// that block's record out).
func TestStaleEntryOfMissingPackDropped(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	lostData := randBytes(80, 70_000)
	lost := putBlock(t, s, lostData)
	n := packOf(t, s, lost)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, packsDir, packName(n))); err != nil {
		t.Fatal(err)
	}
	for range 2 { // clean Opens, each forgetting what the last one settled
		s = openTest(t, dir)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s = openTest(t, dir)
	data := randBytes(81, 70_000)
	c := putBlock(t, s, data)
	if ok, _ := s.Has(lost); ok {
		t.Errorf("the entry of a block whose pack is gone is still held (its pack %d; the new block's %d)", n, packOf(t, s, c))
	}
	if _, err := s.Get(lost); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of the block whose pack is gone: %v, want ErrNotFound", err)
	}
	checkGet(t, s, c, data)
	if st := s.Stats(); st.Blocks != 1 {
		t.Fatalf("Stats = %+v, want 1 block", st)
	}
}

// TestQuarantineOfStaleEntrySparesOtherRecord: an entry that names another
// block's record (however it came to) is quarantined without punching that
// record: free checks the record's header names the block freed.
func TestQuarantineOfStaleEntrySparesOtherRecord(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(82, 70_000)
	c := putBlock(t, s, data)
	rec := record(t, s, c)
	other := randBytes(83, 70_000)
	oc := chunker.ChunkCID(other)
	setRecord(t, s, oc, rec.encode()) // oc's entry names c's record
	s.blocks.Add(1)
	s.packs.mu.Lock()
	s.packs.live[rec.pack]++ // counted as Open would
	s.packs.mu.Unlock()
	if _, err := s.Get(oc); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get through an entry naming another block's record: %v, want ErrCorrupt", err)
	}
	checkGet(t, s, c, data)
	if n := recordsOf(t, s, c); n != 1 {
		t.Fatalf("%d records of the block on disk, want 1", n)
	}
}

// TestDeleteSameBlockTwiceInOneCall: a CID given twice to one deletion
// counts its record dead once, so the other live record of its pack keeps
// the pack.
func TestDeleteSameBlockTwiceInOneCall(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a := putBlock(t, s, randBytes(320, 50_000))
	keep := randBytes(321, 50_000)
	b := putBlock(t, s, keep)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir) // the pack is no longer written to: it can die
	err := s.deleting(func(fl *freeList) error {
		err := s.deleteBlocks(fl, []cid.Cid{a, a})
		if len(fl.cids) != 1 {
			t.Errorf("%d records listed to free, want 1", len(fl.cids))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGet(t, s, b, keep)
}

// sealWrites records the packs each index write seals, and fails the
// runtime seal writes (a batch of one seal) while failing is set.
type sealWrites struct {
	mu      sync.Mutex
	failing bool
	batch   []uint32
	closing []uint32 // the seals of Close's write (the one deleting syncKey)
	isClose bool
}

func (w *sealWrites) write(write func() error, b *leveldb.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batch, w.isClose = nil, false
	_ = b.Replay(w)
	switch {
	case w.isClose:
		w.closing = w.batch
	case w.failing && b.Len() == 1 && len(w.batch) == 1:
		return syscall.EIO
	}
	return write()
}

func (w *sealWrites) Put(k, v []byte) {
	if len(k) == 5 && k[0] == pPack {
		w.batch = append(w.batch, binary.BigEndian.Uint32(k[1:]))
	}
}

func (w *sealWrites) Delete(k []byte) { w.isClose = w.isClose || bytes.Equal(k, syncKey) }

// TestCloseSealsOnlyUnsealed: Close seals the pack being written and a
// pack whose seal failed to write when it was rotated out, not the packs
// sealed already; afterwards every pack on disk is sealed in the index, so
// an Open after a crash that follows does not scan them.
func TestCloseSealsOnlyUnsealed(t *testing.T) {
	dir := t.TempDir()
	var w sealWrites
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackLimit(600_000), withIndexWrite(w.write))
	if err != nil {
		t.Fatal(err)
	}
	var cs []cid.Cid
	for i := range 5 { // two records a pack: packs of 2, 2 and 1
		if i == 4 {
			w.mu.Lock()
			w.failing = true // the second pack's seal, as the fifth Put rotates it out
			w.mu.Unlock()
		}
		cs = append(cs, putBlock(t, s, randBytes(uint64(340+i), 250_000)))
	}
	w.mu.Lock()
	w.failing = false
	w.mu.Unlock()
	first, second, third := packOf(t, s, cs[0]), packOf(t, s, cs[2]), packOf(t, s, cs[4])
	if first == second || second == third || packOf(t, s, cs[1]) != first || packOf(t, s, cs[3]) != second {
		t.Fatalf("blocks in packs %d %d %d %d %d; want two a pack", first, packOf(t, s, cs[1]), second, packOf(t, s, cs[3]), third)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.closing, []uint32{second, third}) {
		t.Fatalf("Close sealed packs %v; want %v, the one whose seal failed and the one being written", w.closing, []uint32{second, third})
	}

	db, err := leveldb.OpenFile(filepath.Join(dir, indexDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, n := range []uint32{first, second, third} {
		if ok, err := db.Has(packKey(n), nil); err != nil || !ok {
			t.Errorf("pack %d sealed in the index after Close: %v, %v; want true", n, ok, err)
		}
	}
}

// TestRecordOfFailedIndexWriteScannedOnOpen: a Put or session add whose
// index write failed (the entry lost) leaves its record synced but
// unindexed; its pack stays unsealed, whether it is still being written at
// Close or was rotated out (during the write, or after), so the next Open
// scans it and indexes the record into the recovery session.
func TestRecordOfFailedIndexWriteScannedOnOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		session bool
		// rotate puts a block that rotates the pack out: "during" the
		// failing index write, or "after" it.
		rotate string
	}{
		{"session add, pack being written", true, ""},
		{"session add, pack rotated out during the write", true, "during"},
		{"session add, pack rotated out after", true, "after"},
		{"put, pack being written", false, ""},
		{"put, pack rotated out after", false, "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var failNext atomic.Bool
			var during func()
			hook := func(write func() error, b *leveldb.Batch) error {
				if failNext.CompareAndSwap(true, false) {
					if during != nil {
						during()
					}
					return syscall.EIO // lost: nothing reached the journal
				}
				return write()
			}
			s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackLimit(600_000), withIndexWrite(hook))
			if err != nil {
				t.Fatal(err)
			}
			first := s
			t.Cleanup(func() { _ = first.Close() })
			data := randBytes(50, 250_000)
			c := chunker.ChunkCID(data)
			var rotated cid.Cid
			var rotatedData []byte
			rotate := func() {
				// Put within c's Put (during), it must not need c's
				// stripe lock, which that Put holds: one in 64 did.
				for seed := uint64(51); ; seed++ {
					if d := randBytes(seed, 400_000); s.stripe(chunker.ChunkCID(d)) != s.stripe(c) {
						rotated, rotatedData = putBlock(t, s, d), d
						return
					}
				}
			}
			if tc.rotate == "during" {
				during = rotate
			}
			failNext.Store(true)
			if tc.session {
				sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
				err = s.PutInSession(sess, c, data)
			} else {
				err = s.Put(c, data)
			}
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("put with a failing index write: %v, want EIO", err)
			}
			if ok, _ := s.Has(c); ok {
				t.Fatal("held after its index write failed: the test no longer loses the entry")
			}
			if tc.rotate == "after" {
				rotate()
			}
			if tc.rotate != "" && packOf(t, s, rotated) == 1 {
				t.Fatal("the second block did not rotate the first pack out")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openTest(t, dir)
			checkGet(t, s, c, data)
			if _, off, _, err := s.Locate(c); err != nil || off != hdrSize {
				t.Fatalf("recovered block located at %d, %v; want its record's data at %d in pack 1", off, err, hdrSize)
			}
			ids, err := s.SessionBlocks(recoveredSession)
			if err != nil || len(ids) != 1 || !ids[0].Equals(c) {
				t.Fatalf("recovery session holds %v, %v; want [%s]", ids, err, c)
			}
			if tc.rotate != "" {
				checkGet(t, s, rotated, rotatedData)
			}
		})
	}
}
