package fsutil

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestCheckOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	for _, m := range []uint32{0o600, 0o400, 0o700} {
		if err := CheckOwnerOnly("k", fsMode(m)); err != nil {
			t.Errorf("mode %04o refused: %v", m, err)
		}
	}
	for _, m := range []uint32{0o644, 0o640, 0o604, 0o660} {
		err := CheckOwnerOnly("/x/k.key", fsMode(m))
		if err == nil || !strings.Contains(err.Error(), "run chmod 600 /x/k.key") {
			t.Errorf("mode %04o: %v; want a refusal saying chmod 600", m, err)
		}
	}
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }

// ReadPrivateFile reads an owner-only regular file up to the limit, and
// refuses anything else with an error beginning with the path, reading
// nothing of a file too large.
func TestReadPrivateFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Repeat([]byte{'k'}, n), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	ok := write("ok", 64, 0o600)
	if b, err := ReadPrivateFile(ok, 64); err != nil || len(b) != 64 {
		t.Fatalf("read a 64-byte key with limit 64: %d bytes, %v", len(b), err)
	}
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		path string
		want string
	}{
		{ok, ok + " is 64 bytes, too large to be a key file (at most 63)"},
		{missing, missing + ": no such file or directory"},
		{dir, dir + " is not a regular file"},
	} {
		if _, err := ReadPrivateFile(c.path, 63); err == nil || err.Error() != c.want {
			t.Errorf("ReadPrivateFile(%s) = %v; want %q", c.path, err, c.want)
		}
	}
	if _, err := ReadPrivateFile(missing, 63); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file's error %v does not wrap fs.ErrNotExist", err)
	}
	if runtime.GOOS != "windows" {
		open := write("open", 10, 0o640)
		if _, err := ReadPrivateFile(open, 64); err == nil || !strings.HasPrefix(err.Error(), open+" has permissions 0640") {
			t.Errorf("a 0640 file: %v; want the chmod refusal", err)
		}
	}
}

// WriteFileNew creates the file (and its directory) with the mode asked
// for, never replaces one, even when many write at once, and leaves
// nothing else behind.
func TestWriteFileNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "k")
	const writers = 8
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs <- WriteFileNew(path, []byte{byte('a' + i)}, 0o600) })
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("a writer that lost: %v; want fs.ErrExist", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers created the file; want 1", won)
	}
	first, err := os.ReadFile(path)
	if err != nil || len(first) != 1 {
		t.Fatalf("read back %q, %v; want one writer's byte", first, err)
	}
	if err := WriteFileNew(path, []byte("later"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a write over the file: %v; want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatalf("the file now holds %q; want %q, unchanged", again, first)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("the directory holds %v (%v); want the file only", ents, err)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(path)
		di, _ := os.Stat(dir)
		if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
			t.Fatalf("file mode %v, directory %v; want 0600, 0700", fi.Mode().Perm(), di.Mode().Perm())
		}
	}
}
