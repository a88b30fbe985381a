package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncRange writes n bytes of f from off back to the disk and waits for
// them (the file's metadata is left to the final fsync).
func syncRange(f *os.File, off, n int64) error {
	err := unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ESPIPE) {
		return nil // not supported here: the final fsync does it all
	}
	return err
}

// oDirect opens a file for direct I/O.
const oDirect = unix.O_DIRECT

// freeSpace returns the bytes f's file system has free for this user, and
// false where it cannot tell.
func freeSpace(f *os.File) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

// isMountPoint reports whether path (whose device is dev, its directory's
// dirDev) is the root of a mount. The kernel says so where it can (Linux
// 5.8): a file bind-mounted on another of the same file system has the same
// device, and on some overlay file systems a file's device differs from its
// directory's though it is no mount point. Elsewhere the devices tell.
func isMountPoint(path string, dev, dirDev uint64) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, 0, &stx); err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	return dev != dirDev
}
