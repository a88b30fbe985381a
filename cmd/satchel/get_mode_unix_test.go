//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGetOutputModes: a new output file gets 0666 less the umask, a
// replaced one keeps its mode (through a symbolic link too), on both the
// direct I/O and the page-cache path.
func TestGetOutputModes(t *testing.T) {
	for _, direct := range []bool{true, false} {
		old := useDirectOutput
		useDirectOutput = direct
		dir := t.TempDir()
		fresh := filepath.Join(dir, "fresh")
		if _, _, err := writeOutput(fresh, false, 0, fillWith([]byte("x"))); err != nil {
			t.Fatal(err)
		}
		if want := fs.FileMode(0o666 &^ processUmask); mode(t, fresh) != want {
			t.Errorf("direct I/O %v: new file mode %v, want %v (umask %03o)", direct, mode(t, fresh), want, processUmask)
		}
		for _, m := range []fs.FileMode{0o644, 0o640, 0o444} {
			target := filepath.Join(dir, "target")
			_ = os.Remove(target)
			if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(target, m); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "link")
			_ = os.Remove(link)
			if err := os.Symlink("target", link); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{target, link} {
				if _, _, err := writeOutput(p, false, 0, fillWith([]byte("new"))); err != nil {
					t.Fatal(err)
				}
				if got := mode(t, target); got != m {
					t.Errorf("direct I/O %v: overwriting %s changed mode %v to %v", direct, filepath.Base(p), m, got)
				}
				if b, _ := os.ReadFile(target); string(b) != "new" {
					t.Errorf("target holds %q", b)
				}
			}
		}
		useDirectOutput = old
	}
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestGetOutputMissingDirectory: a missing directory is named as such, not
// through the temporary file, and nothing is created.
func TestGetOutputMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "nodir", "sub", "x")
	_, _, err := writeOutput(out, false, 0, fillWith([]byte("x")))
	if err == nil || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "nodir", "sub")+" does not exist") || strings.Contains(err.Error(), ".part") {
		t.Fatalf("err %v", err)
	}
	if err := checkOutputDir(out); err == nil || !strings.Contains(err.Error(), "does not exist; create it first") {
		t.Fatalf("checkOutputDir: %v", err)
	}
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x")
	if err := checkOutputDir(filepath.Join(file, "x")); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("checkOutputDir under a file: %v", err)
	}
	onlyEntry(t, dir, "file")
}
