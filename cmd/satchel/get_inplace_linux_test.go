package main

import (
	"os"
	"path/filepath"
	"testing"
)

// stagingFile takes the first place with room for the object — beside the
// file — and none where nothing has room (the get then writes in place,
// straight), leaving no file behind when it finds none.
func TestGetOutputStagingFile(t *testing.T) {
	dir, tmp, cache := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_CACHE_HOME", cache)
	path := filepath.Join(dir, "video.bin")
	f := stagingFile(path, 1<<20)
	if f == nil || filepath.Dir(f.Name()) != dir || !isTempName(filepath.Base(f.Name()), "video.bin") {
		t.Fatalf("stagingFile of 1 MiB: %v; want a temporary file in %s", f, dir)
	}
	must(t, os.Remove(f.Name()))
	f.Close()
	if f := stagingFile(path, 1<<60); f != nil {
		t.Fatalf("stagingFile of 1 EiB: %s; want none", f.Name())
	}
	for _, d := range []string{dir, tmp, cache} {
		onlyEntry(t, d)
	}
}
