package distributor

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
)

func rawBlock(t *testing.T, b []byte) cid.Cid {
	t.Helper()
	sum, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, sum)
}

func block(n int, fill byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = fill
	}
	return b
}

// Eviction takes the object with the highest age × size ÷ popularity:
// the large unpopular one goes, the popular one stays.
func TestCacheEvictionOrder(t *testing.T) {
	c, err := openCache(t.TempDir(), 1000, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	put := func(obj chain.ObjectID, b []byte) {
		if err := c.put(obj, rawBlock(t, b), b); err != nil {
			t.Fatal(err)
		}
	}
	put(1, block(400, 1)) // popular, last read an hour ago
	put(2, block(400, 2)) // read once, an hour ago
	for range 50 {
		c.touch(1)
	}
	c.mu.Lock()
	for _, id := range []chain.ObjectID{1, 2} {
		c.objects[id].last = time.Now().Add(-time.Hour)
	}
	c.mu.Unlock()
	put(3, block(400, 3)) // new, over the bound: one object must go
	if used, _, _, ev := c.usage(); used > 1000 || ev != 1 {
		t.Fatalf("used %d, evicted %d", used, ev)
	}
	if !c.has(1) || c.has(2) || !c.has(3) {
		t.Fatalf("kept 1:%v 2:%v 3:%v; want the popular and the new one kept", c.has(1), c.has(2), c.has(3))
	}
}

// After a crash (no clean state), block files are verified: a corrupt one
// is dropped, a good one kept; a clean stop keeps everything unread.
func TestCacheReopenVerifiesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c, err := openCache(dir, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := block(100, 7), block(100, 8)
	gc, bc := rawBlock(t, good), rawBlock(t, bad)
	if err := c.put(5, gc, good); err != nil {
		t.Fatal(err)
	}
	if err := c.put(6, bc, bad); err != nil {
		t.Fatal(err)
	}
	// Crash: no save(true); a block file torn.
	if err := os.WriteFile(c.path(6, bc), block(100, 9), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := openCache(dir, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.holds(5, gc) {
		t.Fatal("good block lost")
	}
	if c2.holds(6, bc) {
		t.Fatal("corrupt block kept after a crash")
	}
	if used, _, _, _ := c2.usage(); used != 100 {
		t.Fatalf("used %d, want 100", used)
	}
	// A clean stop: reopened without reading the files.
	if err := c2.save(true); err != nil {
		t.Fatal(err)
	}
	c3, err := openCache(dir, 1<<20, log)
	if err != nil || !c3.has(5) {
		t.Fatalf("after a clean stop: %v", err)
	}
}

func TestRangeBounds(t *testing.T) {
	for _, tc := range []struct {
		hdr        string
		start, end int64
		kind       rangeKind
	}{
		{"", 0, 1000, rangeOK},
		{"bytes=100-199", 100, 200, rangeOK},
		{"bytes=900-", 900, 1000, rangeOK},
		{"bytes=-100", 900, 1000, rangeOK},
		{"bytes=10-20,500-600", 10, 601, rangeOK},
		{"bytes=0-99999999", 0, 1000, rangeOK},
		{"bytes=", 0, 1000, rangeOK},               // no range: all of it
		{"bytes=5000-,100-199", 100, 200, rangeOK}, // the past-the-end one dropped
		{"bytes=x", 0, 1000, rangeInvalid},
		{"bytes=200-100", 0, 1000, rangeInvalid},
		{"bytes=--5", 0, 1000, rangeInvalid},
		{"bytes=1000-", 0, 0, rangeNoOverlap},
		{"bytes=5000-6000, 1000-", 0, 0, rangeNoOverlap},
	} {
		s, e, k := rangeBounds(tc.hdr, 1000)
		if s != tc.start || e != tc.end || k != tc.kind {
			t.Errorf("%q: %d %d %v, want %d %d %v", tc.hdr, s, e, k, tc.start, tc.end, tc.kind)
		}
	}
	many := "bytes=0-0"
	for range MaxRanges {
		many += ",1-1"
	}
	if _, _, k := rangeBounds(many, 1000); k != rangeTooMany {
		t.Error("more than MaxRanges ranges accepted")
	}
}

// Block files stay open between readers, one reader at a time each, and are
// closed when their object leaves the cache (or comes back after).
func TestCacheKeepsBlockFilesOpen(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	data := block(1000, 3)
	bc := rawBlock(t, data)
	if err := c.put(1, bc, data); err != nil {
		t.Fatal(err)
	}
	a, size, ok := c.open(1, bc)
	if !ok || size != 1000 {
		t.Fatalf("open: %v, size %d", ok, size)
	}
	b, _, _ := c.open(1, bc)
	if a.f == b.f {
		t.Fatal("two readers share one open file")
	}
	a.pos = 1000
	c.release(1, bc, a)
	again, _, _ := c.open(1, bc)
	if again.f != a.f || again.pos != 1000 {
		t.Fatalf("the released file was not reused with its offset (same %v, offset %d)", again.f == a.f, again.pos)
	}
	c.release(1, bc, again)
	c.remove(1)
	if _, err := a.f.Stat(); err == nil {
		t.Fatal("an idle file of an evicted object is still open")
	}
	c.release(1, bc, b) // in use during the eviction
	if _, err := b.f.Stat(); err == nil {
		t.Fatal("a file given back after its object left is still open")
	}
	if _, _, ok := c.open(1, bc); ok {
		t.Fatal("an evicted block opened")
	}
	if c.nfiles != 0 || len(c.files) != 0 {
		t.Fatalf("%d files counted open after eviction", c.nfiles)
	}
}

// A file opened before its object was evicted and cached again is the old
// (deleted) inode: given back, it is closed, not kept for later readers,
// who get the new file.
func TestCacheClosesFilesOfAnEarlierCaching(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	data := block(1000, 5)
	bc := rawBlock(t, data)
	if err := c.put(1, bc, data); err != nil {
		t.Fatal(err)
	}
	old, _, ok := c.open(1, bc)
	if !ok {
		t.Fatal("cached block did not open")
	}
	c.remove(1) // evicted while a reader holds old
	if err := c.put(1, bc, data); err != nil {
		t.Fatal(err)
	}
	c.release(1, bc, old)
	if _, err := old.f.Stat(); err == nil {
		t.Fatal("a file of the object's earlier caching was kept open")
	}
	cur, _, ok := c.open(1, bc)
	if !ok {
		t.Fatal("re-cached block did not open")
	}
	if cur.f == old.f {
		t.Fatal("a reader was handed the earlier caching's file")
	}
	c.release(1, bc, cur)
	if again, _, _ := c.open(1, bc); again.f != cur.f {
		t.Fatal("the current caching's file was not kept for the next reader")
	}
}

// An object removed while its blocks are cached again (a reader fetching
// it anew) ends up with every block it lists readable: the removal never
// deletes a file the new caching put in place.
func TestCacheRemoveRacesPut(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<30, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	for i := range 64 {
		blocks = append(blocks, block(4096, byte(i)))
	}
	putAll := func() {
		for _, b := range blocks {
			if err := c.put(1, rawBlock(t, b), b); err != nil {
				t.Error(err)
			}
		}
	}
	for round := range 20 {
		putAll()
		var wg sync.WaitGroup
		wg.Go(func() { c.remove(1) })
		wg.Go(func() {
			for c.has(1) { // cache again once the index let go of it
			}
			putAll()
		})
		wg.Wait()
		for _, b := range blocks {
			bc := rawBlock(t, b)
			if !c.holds(1, bc) {
				t.Fatalf("round %d: block %s not cached after it was put", round, bc)
			}
			if got, err := os.ReadFile(c.path(1, bc)); err != nil || !bytes.Equal(got, append(b, trailer(b)...)) {
				t.Fatalf("round %d: the index lists block %s but its file reads %d bytes: %v", round, bc, len(got), err)
			}
		}
		c.remove(1)
	}
}

// A block the index lists whose file went missing or was torn is dropped
// from the index by the read that finds it so, and can be cached again.
func TestCacheForgetsLostFiles(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lost, torn := block(1000, 1), block(1000, 2)
	lc, tc := rawBlock(t, lost), rawBlock(t, torn)
	for _, b := range [][]byte{lost, torn} {
		if err := c.put(1, rawBlock(t, b), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(c.path(1, lc)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(c.path(1, tc), 10); err != nil {
		t.Fatal(err)
	}
	for _, bc := range []cid.Cid{lc, tc} {
		if _, ok := c.read(1, bc); ok {
			t.Fatalf("block %s read from a lost file", bc)
		}
		if c.holds(1, bc) {
			t.Fatalf("block %s still listed after its file was found lost", bc)
		}
	}
	if used, _, _, _ := c.usage(); used != 0 {
		t.Fatalf("used %d after both blocks were dropped, want 0", used)
	}
	if err := c.put(1, lc, lost); err != nil {
		t.Fatal(err)
	}
	if b, ok := c.read(1, lc); !ok || !bytes.Equal(b, lost) {
		t.Fatalf("block cached again reads %d bytes (ok %v)", len(b), ok)
	}
}

// A write that found the disk full waits for the evictions whose files were
// being deleted then, not for those begun later: writers evicting at the
// same time could keep one deletion or another under way for ever, and the
// write would never try again. (It waited once no deletion at all was in
// progress.) The bubble shows when the waiter is blocked.
func TestCacheWaitFreedOnlyEarlierDeletions(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		c, err := openCache(dir, 1<<20, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for obj := range chain.ObjectID(2) {
			b := block(1000, byte(obj))
			if err := c.put(obj+1, rawBlock(t, b), b); err != nil {
				t.Fatal(err)
			}
		}
		drop := func(id chain.ObjectID) string {
			c.mu.Lock()
			defer c.mu.Unlock()
			_, trash := c.dropLocked(id, c.objects[id])
			return trash
		}
		first := drop(1)
		waited := make(chan struct{})
		go func() {
			c.waitFreed()
			close(waited)
		}()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("waitFreed returned while object 1's files were being deleted")
		default:
		}
		later := drop(2)
		c.removeTrash(first)
		synctest.Wait()
		select {
		case <-waited:
		default:
			t.Error("waitFreed still waits, for a deletion begun after it was called")
		}
		c.removeTrash(later)
		<-waited
	})
}
