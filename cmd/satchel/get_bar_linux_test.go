package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestGetOutputSharingStderrHasNoBar: a get whose output is the file its
// stderr writes to (-o /dev/stderr, or the same file named twice) must draw
// no progress bar, which would land among the object's bytes; any other
// output keeps it.
func TestGetOutputSharingStderrHasNoBar(t *testing.T) {
	dir := t.TempDir()
	errFile, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	for _, tc := range []struct {
		name, path string
		shares     bool
	}{
		{"its descriptor", fmt.Sprintf("/dev/fd/%d", errFile.Fd()), true},
		{"its path", errFile.Name(), true},
		{"another file", filepath.Join(dir, "object"), false},
	} {
		o, err := openOutput(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := o.sharesFile(errFile); got != tc.shares {
			t.Errorf("%s (%s): sharesFile = %v, want %v", tc.name, tc.path, got, tc.shares)
		}
		o.Close()
	}
	var none *output // standard output: no output to share
	if none.sharesFile(errFile) {
		t.Error("no output file shares stderr")
	}
}
