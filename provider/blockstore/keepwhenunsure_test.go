package blockstore

// Where the store cannot tell what it would delete, it keeps it: an upload
// session record that does not decode, a corrupt block's record it could
// not copy aside.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
)

// TestUndecodableSessionKept: expiry leaves a session record that does
// not decode, with its chunks, and counts it.
func TestUndecodableSessionKept(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	cs := putSession(t, s, 800, 2, time.Now().Add(time.Hour))
	id := []byte("0123456789abcdef")
	if err := s.db.Put(sessionKey(id), []byte{0xff}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExpireSessions(time.Now().Add(30 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d chunks of an undecodable session held", held, len(cs))
	}
	if st := s.Stats(); st.BadSessions != 1 {
		t.Fatalf("Stats = %+v, want 1 bad session", st)
	}
}

// TestQuarantineWithoutCopyKeepsRecord: a corrupt block that cannot be
// copied aside (here its quarantine path is taken; a full disk does the
// same) is quarantined without punching its record, the only copy.
func TestQuarantineWithoutCopyKeepsRecord(t *testing.T) {
	dir := t.TempDir()
	s := openPacks(t, dir, 160<<10) // two records a pack
	other := putBlock(t, s, randBytes(801, 70_000))
	data := randBytes(802, 70_000)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	next := putBlock(t, s, randBytes(803, 70_000)) // rotates the pack out
	if packOf(t, s, other) != packOf(t, s, c) || packOf(t, s, next) == packOf(t, s, c) {
		t.Fatalf("packs %d %d %d, want the first two shared, the third apart",
			packOf(t, s, other), packOf(t, s, c), packOf(t, s, next))
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 0xff
	overwrite(t, s, c, bad)
	if err := os.Mkdir(filepath.Join(dir, quarantineDir, c.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get corrupt: %v, want ErrCorrupt", err)
	}
	if n := recordsOf(t, s, c); n != 1 {
		t.Fatalf("%d records of the block on disk, want 1 (not punched)", n)
	}
	// The pack's last live block goes: the pack stays for Open to read.
	if err := s.Delete(other); err != nil {
		t.Fatal(err)
	}
	if n := recordsOf(t, s, c); n != 1 {
		t.Fatalf("%d records of the block on disk after its pack's last live block went, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Open reads it: the record does not verify, and nothing else is there.
	s = openTest(t, dir)
	defer s.Close()
	if n := len(packFiles(t, dir)); n != 1 {
		t.Fatalf("%d packs left, want 1 (the pack of a corrupt record unlinked)", n)
	}
}
