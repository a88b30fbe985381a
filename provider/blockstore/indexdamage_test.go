package blockstore

// An index that lost entries (a flipped byte in its goleveldb journal, its
// files wiped) must not cost the blocks: Open finds the damage, re-reads
// every pack and keeps every record that verifies.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// putSession puts n chunks in an upload session expiring at expiry.
func putSession(t *testing.T, s *Store, seed uint64, n int, expiry time.Time) []cid.Cid {
	t.Helper()
	sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: expiry}
	var cs []cid.Cid
	for i := range n {
		data := randBytes(seed+uint64(i), 64<<10)
		c := chunker.ChunkCID(data)
		if err := s.PutInSession(sess, c, data); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// flipJournal flips one byte early in the index's goleveldb journal.
func flipJournal(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, indexDir, "*.log"))
	flipped := false
	for _, l := range logs {
		if strings.HasSuffix(l, "LOG") {
			continue
		}
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 {
			b[40] ^= 1
			if err := os.WriteFile(l, b, 0o644); err != nil {
				t.Fatal(err)
			}
			flipped = true
		}
	}
	if !flipped {
		t.Fatalf("no journal to damage among %v", logs)
	}
}

// heldOf counts those of cs s holds.
func heldOf(t *testing.T, s *Store, cs []cid.Cid) int {
	t.Helper()
	held := 0
	for _, c := range cs {
		if ok, err := s.Has(c); err != nil {
			t.Fatal(err)
		} else if ok {
			held++
		}
	}
	return held
}

func packFiles(t *testing.T, dir string) []string {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(dir, packsDir, "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

// TestJournalBitFlipReindexesPacks: one flipped byte in the journal of a
// cleanly closed store (goleveldb skips the damaged block without a word)
// is found, every pack is read again, and every acknowledged block is
// held, outside any session that could expire it; the next Open is clean.
func TestJournalBitFlipReindexesPacks(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	cs := putSession(t, s, 100, 8, time.Now().Add(time.Hour))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	packs := packFiles(t, dir)
	flipJournal(t, dir)

	s = openTest(t, dir)
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d acknowledged blocks held after one flipped journal byte", held, len(cs))
	}
	if after := packFiles(t, dir); len(after) < len(packs) {
		t.Fatalf("packs before %v, after %v", packs, after)
	}
	if ids, _ := s.SessionBlocks(recoveredSession); len(ids) != 0 {
		t.Fatalf("blocks of a damaged index put in the recovery session (to expire): %d", len(ids))
	}
	if _, err := os.Stat(filepath.Join(dir, reindexMarker)); err == nil {
		t.Fatal("the reindex marker outlived the reindex")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("next Open: %d of %d held", held, len(cs))
	}
}

// TestJournalBitFlipAfterCrashKeepsChunks: the same flipped byte after a
// crash: the session chunks are found in their pack and kept, not put in
// the recovery session to be deleted before their receipts end.
func TestJournalBitFlipAfterCrashKeepsChunks(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	promised := time.Now().Add(6 * 24 * time.Hour) // the receipts' expiry
	cs := putSession(t, s, 400, 8, promised)
	crash(t, s)
	flipJournal(t, dir)
	s = openTest(t, dir)
	// Two days on, well before the receipts' expiry.
	if _, err := s.ExpireSessions(time.Now().Add(48 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d chunks receipted until %s held at +48h", held, len(cs), promised.Format(time.RFC3339))
	}
}

// TestRecoveredSessionOutlivesReceipts: blocks recovered after a plain
// crash (no damage seen) whose session references were lost are held as
// long as any upload session may have been receipted for.
func TestRecoveredSessionOutlivesReceipts(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	promised := time.Now().Add(6 * 24 * time.Hour)
	cs := putSession(t, s, 500, 3, promised)
	s = crashLosing(t, s, cs)
	defer s.Close()
	if _, err := s.ExpireSessions(promised.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d recovered chunks held an hour before their receipts end", held, len(cs))
	}
	if _, err := s.ExpireSessions(time.Now().Add(RecoveredTTL + time.Hour)); err != nil {
		t.Fatal(err)
	}
	if held := heldOf(t, s, cs); held != 0 {
		t.Fatalf("%d recovered chunks held after RecoveredTTL", held)
	}
}

// TestTornJournalTailIsNotDamage: a journal cut inside its last record (a
// crash mid-write) is normal: no reindex. The same cut after a clean close,
// or a bad chunk followed by good ones, is damage.
func TestTornJournalTailIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	putSession(t, s, 600, 4, time.Now().Add(time.Hour))
	crash(t, s)
	idx := filepath.Join(dir, indexDir)
	logs, _ := filepath.Glob(filepath.Join(idx, "[0-9]*.log"))
	if len(logs) != 1 {
		t.Fatalf("journals %v", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d, err := journalDamage(idx, false); err != nil || d != "" {
		t.Fatalf("whole journal: damage %q, %v", d, err)
	}
	torn := b[:len(b)-3]
	if err := os.WriteFile(logs[0], torn, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := journalDamage(idx, false); err != nil || d != "" {
		t.Fatalf("torn tail after a crash: damage %q, %v", d, err)
	}
	if d, _ := journalDamage(idx, true); d == "" {
		t.Fatal("torn tail after a clean close not taken for damage")
	}
	mid := append([]byte(nil), b...)
	mid[40] ^= 1
	if err := os.WriteFile(logs[0], mid, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, _ := journalDamage(idx, false); d == "" {
		t.Fatal("a bad chunk followed by good ones not taken for damage")
	}
	if err := os.WriteFile(logs[0], torn, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, reindexMarker)); err == nil {
		t.Fatal("reindex marker left after a torn tail")
	}
}

// TestEmptiedIndexDirRebuilds: index/ present but holding no database
// (CURRENT gone, or every file) is a lost index: rebuilt from the packs,
// not opened empty.
func TestEmptiedIndexDirRebuilds(t *testing.T) {
	for _, name := range []string{"no CURRENT", "index files gone"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			data := randBytes(300, 64<<10)
			c := chunker.ChunkCID(data)
			if err := s.Put(c, data); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			idx := filepath.Join(dir, indexDir)
			ents, _ := os.ReadDir(idx)
			for _, e := range ents {
				if name == "no CURRENT" && e.Name() != "CURRENT" {
					continue
				}
				if err := os.Remove(filepath.Join(idx, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
			s = openTest(t, dir)
			defer s.Close()
			checkGet(t, s, c, data)
			if len(packFiles(t, dir)) == 0 {
				t.Fatal("no pack left")
			}
		})
	}
}

// TestDeadPackReadBeforeUnlink: a pack the index names nothing in (its
// entries forgotten) is read before it is unlinked: its blocks that verify
// are indexed again and kept; a pack of nothing but garbage is unlinked.
func TestDeadPackReadBeforeUnlink(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	data := randBytes(700, 70_000)
	c := putBlock(t, s, data)
	n := packOf(t, s, c)
	forget(t, s, c)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, packsDir, packName(n+10))
	if err := os.WriteFile(junk, randBytes(701, 3*ioAlign), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	checkGet(t, s, c, data)
	if ids, _ := s.SessionBlocks(recoveredSession); len(ids) != 0 {
		t.Fatalf("blocks of a clean store's forgotten entries put in the recovery session: %d", len(ids))
	}
	if _, err := os.Stat(junk); err == nil {
		t.Fatal("a pack of garbage was kept")
	}
}

// forget drops block c's index entry behind the store's back.
func forget(t *testing.T, s *Store, c cid.Cid) {
	t.Helper()
	if err := s.db.Delete(blockKey(c), nil); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedManifestReindexes: a damaged index manifest (goleveldb would
// skip the record and lose the tables it named) is rebuilt from the
// tables, and every pack read again.
func TestDamagedManifestReindexes(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	cs := putSession(t, s, 1000, 4, time.Now().Add(time.Hour))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir) // the journal goes into a table the manifest names
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms, _ := filepath.Glob(filepath.Join(dir, indexDir, "MANIFEST-*"))
	if len(ms) != 1 {
		t.Fatalf("manifests %v", ms)
	}
	b, err := os.ReadFile(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	b[20] ^= 1
	if err := os.WriteFile(ms[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d held after a damaged manifest", held, len(cs))
	}
	if _, err := os.Stat(filepath.Join(dir, reindexMarker)); err == nil {
		t.Fatal("the reindex marker outlived the reindex")
	}
}

// TestDeletedStaysDeletedUnpunched: on a file system that cannot punch
// holes a deleted block's bytes stay in its pack; after a clean restart
// (and after an unclean one) the block must not be read back in from the
// pack the index names nothing in, and the pack goes.
func TestDeletedStaysDeletedUnpunched(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		t.Run(map[bool]string{false: "clean", true: "crash"}[unclean], func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			s.packs.noPunch.Store(true)
			data := randBytes(7, 100_000)
			c := putBlock(t, s, data)
			if err := s.Delete(c); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, packsDir, unpunchedMarker)); err != nil {
				t.Fatalf("no %s after a deletion left unpunched: %v", unpunchedMarker, err)
			}
			if unclean {
				crash(t, s)
			} else if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir)
			defer s.Close()
			if _, err := s.ExpireSessions(time.Now().Add(365 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Has(c); ok {
				t.Fatalf("a deleted block is back after a restart (blocks=%d)", s.Stats().Blocks)
			}
		})
	}
}
