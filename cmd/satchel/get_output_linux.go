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
