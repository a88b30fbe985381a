package blockstore

// The order of the two durable writes: no index write may name a record
// that a completed fdatasync of its pack did not cover, or a power loss
// could leave an entry pointing at bytes that never reached the disk.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
)

// syncOrder watches a store's pack syncs and index writes through the test
// hooks. A sync covers the records whole in the file when it starts (in the
// page cache or written directly): those are synced once it returns nil.
type syncOrder struct {
	mu     sync.Mutex
	synced map[[2]int64]bool // (pack, record offset)
	bad    []string
	named  int
}

func newSyncOrder() *syncOrder { return &syncOrder{synced: map[[2]int64]bool{}} }

func (o *syncOrder) options() []Option {
	return []Option{withPackSync(o.sync), withIndexWrite(o.write)}
}

// sync notes the whole records of f, syncs it, and counts them synced.
func (o *syncOrder) sync(sync func() error, f *os.File) error {
	n, ok := parsePackName(filepath.Base(f.Name()))
	raw, err := os.ReadFile(f.Name())
	if !ok || err != nil {
		return fmt.Errorf("syncOrder: read %s: %v", f.Name(), err)
	}
	var whole [][2]int64
	for off := 0; off+hdrSize <= len(raw); {
		h, err := decodeHeader(raw[off : off+hdrSize])
		if err != nil {
			off += hdrSize
			continue
		}
		end := off + int(recordLen(h.size))
		if end <= len(raw) && blockCRC(raw[off+hdrSize:off+hdrSize+int(h.size)]) == h.crc {
			whole = append(whole, [2]int64{int64(n), int64(off)})
		}
		off = max(end, off+hdrSize)
	}
	if err := sync(); err != nil {
		return err
	}
	o.mu.Lock()
	for _, k := range whole {
		o.synced[k] = true
	}
	o.mu.Unlock()
	return nil
}

// write checks every block entry b adds names a synced record, then
// writes b.
func (o *syncOrder) write(write func() error, b *leveldb.Batch) error {
	_ = b.Replay(o)
	return write()
}

// Put is leveldb.BatchReplay's: one entry of a batch being written.
func (o *syncOrder) Put(k, v []byte) {
	if len(k) == 0 || k[0] != pBlock {
		return
	}
	rec, err := decodeBlockRecord(v)
	if err != nil || !rec.packed {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.named++
	if !o.synced[[2]int64{int64(rec.pack), rec.off}] {
		o.bad = append(o.bad, fmt.Sprintf("%s at %d", packName(rec.pack), rec.off))
	}
}

// Delete is leveldb.BatchReplay's.
func (o *syncOrder) Delete([]byte) {}

// check fails if any index write named an unsynced record, or none was
// named at all (the test saw nothing).
func (o *syncOrder) check(t *testing.T, what string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.named == 0 {
		t.Fatalf("%s: no index write named a pack record", what)
	}
	if len(o.bad) > 0 {
		t.Fatalf("%s: %d index writes named records no completed fdatasync covered: %v", what, len(o.bad), o.bad)
	}
}

// TestIndexNeverAheadOfPackSync: concurrent plain and session puts, and a
// recovery that indexes a record the index lacks, index only records a
// completed fdatasync of their pack covered.
func TestIndexNeverAheadOfPackSync(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	lost := randBytes(70, 200_000)
	cl, _ := writeUnindexed(t, s, lost)
	crash(t, s)

	o := newSyncOrder()
	s, err := Open(dir, append(o.options(), WithSessionExpiry(0), WithLogger(discard), withPackLimit(1<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	checkGet(t, s, cl, lost)
	o.check(t, "recovery")

	sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Go(func() {
			for i := range 6 {
				data := randBytes(uint64(100+w*10+i), 50_000+w*1000)
				c := chunker.ChunkCID(data)
				var err error
				if w%2 == 0 {
					err = s.Put(c, data)
				} else {
					err = s.PutInSession(sess, c, data)
				}
				if err != nil {
					errs <- fmt.Errorf("put %s: %w", c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	o.check(t, "puts")
}

// sessionWrites checks that every index write adding a block to the
// recovery session also writes the session's record.
type sessionWrites struct {
	mu               sync.Mutex
	adds, withRecord int
	batchAdds        bool
	batchRecord      bool
}

func (w *sessionWrites) write(write func() error, b *leveldb.Batch) error {
	w.mu.Lock()
	w.batchAdds, w.batchRecord = false, false
	_ = b.Replay(w)
	if w.batchAdds {
		w.adds++
		if w.batchRecord {
			w.withRecord++
		}
	}
	w.mu.Unlock()
	return write()
}

func (w *sessionWrites) Put(k, v []byte) {
	switch {
	case bytes.HasPrefix(k, sessBlockPrefix(recoveredSession)):
		w.batchAdds = true
	case bytes.Equal(k, sessionKey(recoveredSession)):
		w.batchRecord = true
	}
}

func (w *sessionWrites) Delete([]byte) {}

// TestRecoverySessionRecordWrittenWithItsBlocks: the recovery session's
// record goes in the same index write as each block recovery puts in it,
// so no crash leaves blocks in a session without a record (never expired).
func TestRecoverySessionRecordWrittenWithItsBlocks(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	lost := randBytes(330, 60_000)
	cl, _ := writeUnindexed(t, s, lost)
	crash(t, s)
	var w sessionWrites
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withIndexWrite(w.write))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	checkGet(t, s, cl, lost)
	if w.adds != 1 || w.withRecord != 1 {
		t.Fatalf("%d index writes added to the recovery session, %d with its record; want 1 and 1", w.adds, w.withRecord)
	}
	if n, _ := s.SessionBytes(recoveredSession); n != uint64(len(lost)) {
		t.Fatalf("recovery session holds %d bytes, want %d", n, len(lost))
	}
}
