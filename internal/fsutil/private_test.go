package fsutil

import (
	"io/fs"
	"runtime"
	"strings"
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
