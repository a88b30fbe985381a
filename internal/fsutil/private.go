package fsutil

import (
	"fmt"
	"io/fs"
	"runtime"
)

// CheckOwnerOnly returns an error when a secret file (a key) with mode is
// accessible by its group or other users, as ssh refuses such a key: whoever
// reads it can act as its owner. The error reads "PATH has permissions 0644
// ... run chmod 600 PATH", so callers prefix what the file is ("account key
// %w"). Windows has no Unix permission bits to check.
func CheckOwnerOnly(path string, mode fs.FileMode) error {
	if perm := mode.Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("%s has permissions %04o and is accessible by other users; "+
			"it must be readable by its owner only: run chmod 600 %s", path, perm, path)
	}
	return nil
}
