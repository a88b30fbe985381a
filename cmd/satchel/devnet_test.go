package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The commands the devnet prints name the binary it was started as, by an
// absolute path when that was a path (make run starts ./bin/satchel, which
// is not on PATH: a printed `satchel …` would not run), so they work
// pasted into a shell in any directory.
func TestDevnetProgram(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ arg0, want string }{
		{"satchel", "satchel"},
		{"./bin/satchel", filepath.Join(wd, "bin", "satchel")},
		{"bin/satchel", filepath.Join(wd, "bin", "satchel")},
		{"/usr/local/bin/satchel", "/usr/local/bin/satchel"},
	} {
		if got := devnetProgram(tt.arg0); got != tt.want {
			t.Errorf("devnetProgram(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
}
