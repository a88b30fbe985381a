package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatalf("sync an existing directory: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("sync a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// WriteFileAtomic replaces the file whole (a new inode renamed over the old
// one, never rewritten in place) with the mode asked for, and a write that
// fails leaves the old file and no temporary file behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "f.json")
	if err := WriteFileAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("rewritten in place, not replaced by a rename")
	}
	if got, _ := os.ReadFile(path); string(got) != "two" || after.Mode().Perm() != 0o640 {
		t.Fatalf("read back %q mode %v; want \"two\" 0640", got, after.Mode().Perm())
	}
	// A rename onto a non-empty directory fails.
	blocked := filepath.Join(dir, "sub", "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocked, []byte("three"), 0o600); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	ents, err := os.ReadDir(filepath.Join(dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("left in the directory: %v; want f.json and blocked only", ents)
	}
}

// TestSpace reads a real file system's figures: some size, no more free
// than that, and an error for a directory that does not exist.
func TestSpace(t *testing.T) {
	free, total, err := Space(t.TempDir())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("free space is not read on this platform")
	}
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || free > total {
		t.Fatalf("free %d of total %d", free, total)
	}
	if _, _, err := Space(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing directory's space read without an error")
	}
}
