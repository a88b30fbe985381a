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

// diskSpace returns the bytes free (to an unprivileged user) and the size
// of the filesystem that holds path; ok is false when it cannot tell.
func diskSpace(path string) (free, total int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return int64(min(st.Bavail*bs, 1<<62)), int64(min(st.Blocks*bs, 1<<62)), true
}
