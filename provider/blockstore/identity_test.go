package blockstore

// packs/ absent for one start (an unmounted disk, a mount that came up
// late) must neither drop the index entries of the packs nor, on the next
// start with the packs back, cost a block.

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// putSome puts n blocks and closes the store cleanly.
func putSome(t *testing.T, dir string, n int) []cid.Cid {
	t.Helper()
	s := openTest(t, dir)
	var cs []cid.Cid
	for i := range n {
		data := randBytes(uint64(200+i), 64<<10)
		c := chunker.ChunkCID(data)
		if err := s.Put(c, data); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return cs
}

// unmount moves packs/ away, leaving an empty mount point, and returns
// the function that mounts it again.
func unmount(t *testing.T, dir string) (mount func()) {
	t.Helper()
	packs := filepath.Join(dir, packsDir)
	away := filepath.Join(t.TempDir(), "packs-on-unmounted-disk")
	if err := os.Rename(packs, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(packs, 0o755); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(packs); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(away, packs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnmountedPacksRefused: Open refuses a store whose packs/ is empty
// (its identity file missing) while its index names packs, naming them,
// and changes nothing: with the packs back, every block is held.
func TestUnmountedPacksRefused(t *testing.T) {
	dir := t.TempDir()
	cs := putSome(t, dir, 4)
	mount := unmount(t, dir)
	for range 2 {
		_, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
		if !errors.Is(err, ErrWrongPacks) {
			t.Fatalf("Open with packs/ empty: %v, want ErrWrongPacks", err)
		}
		t.Log(err)
	}
	mount()
	s := openTest(t, dir)
	defer s.Close()
	if held := heldOf(t, s, cs); held != len(cs) || len(packFiles(t, dir)) == 0 {
		t.Fatalf("after a start without its packs: %d of %d blocks held", held, len(cs))
	}
	if _, err := os.Stat(filepath.Join(dir, reindexMarker)); err == nil {
		t.Fatal("a refused Open left the store to be reindexed")
	}
}

// TestOtherStoresPacksRefused: packs/ holding another store's packs is
// refused.
func TestOtherStoresPacksRefused(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	putSome(t, a, 1)
	putSome(t, b, 1)
	id, err := os.ReadFile(filepath.Join(b, packsDir, storeIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, packsDir, storeIDFile), id, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(a, WithSessionExpiry(0), WithLogger(discard)); !errors.Is(err, ErrWrongPacks) {
		t.Fatalf("Open with another store's packs/: %v, want ErrWrongPacks", err)
	}
}

// TestStoreWithoutIdentity: a store from before identities gets one on
// its first Open; with its packs/ unmounted at that Open, it is refused.
func TestStoreWithoutIdentity(t *testing.T) {
	dir := t.TempDir()
	cs := putSome(t, dir, 2)
	dropIdentity := func() {
		t.Helper()
		s := openTest(t, dir)
		if err := s.db.Delete(storeIDKey, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, packsDir, storeIDFile)); err != nil {
			t.Fatal(err)
		}
	}
	dropIdentity()
	mount := unmount(t, dir)
	if _, err := Open(dir, WithSessionExpiry(0), WithLogger(discard)); !errors.Is(err, ErrWrongPacks) {
		t.Fatalf("Open of a store without identity, packs/ empty: %v, want ErrWrongPacks", err)
	}
	mount()
	s := openTest(t, dir)
	if held := heldOf(t, s, cs); held != len(cs) {
		t.Fatalf("%d of %d held", held, len(cs))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, packsDir, storeIDFile)); err != nil {
		t.Fatalf("no identity written on first Open: %v", err)
	}
	// An identity file lost while every pack is there is written again.
	if err := os.Remove(filepath.Join(dir, packsDir, storeIDFile)); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, packsDir, storeIDFile)); err != nil {
		t.Fatalf("identity file not written again: %v", err)
	}
}
