package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// A binary path or config path with spaces, quotes or shell metacharacters
// is quoted in the printed commands, so a pasted line runs that binary with
// that config: here a shell runs the printed words, reaching a script in a
// directory named to split, expand and unbalance them unquoted.
func TestDevnetProgramQuoted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my bin $HOME it's;x")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "satchel")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nprintf '%s|' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config $PATH.toml")
	line := devnetProgram(bin) + " -c " + shellQuote(cfg) + " chain status"
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	// A process another test forks while the script is still open for
	// writing holds it a moment ("text file busy", Go issue 22315): again.
	for i := 0; i < 50 && err != nil && strings.Contains(string(out), "busy"); i++ {
		time.Sleep(20 * time.Millisecond)
		out, err = exec.Command("sh", "-c", line).CombinedOutput()
	}
	if want := "-c|" + cfg + "|chain|status|"; err != nil || string(out) != want {
		t.Fatalf("sh -c %s: %q, %v; want %q", line, out, err, want)
	}
	if got := shellQuote("/usr/local/bin/satchel"); got != "/usr/local/bin/satchel" {
		t.Errorf("a plain path quoted: %s", got)
	}
}
