package distributor

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// canSyncDirs says a directory can be synced (fsync of its names).
const canSyncDirs = true

// syncTree writes to disk every file and directory under dir that is not
// there yet: syncfs of the filesystem that holds dir, one call however
// many block files.
func syncTree(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(d.Fd()))
	return errors.Join(err, d.Close())
}
