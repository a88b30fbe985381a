//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dupDescriptor duplicates descriptor fd of this process, to write
// through at its offset and with its flags (a dup shares both), as a shell
// opened it.
func dupDescriptor(path string, fd int) (*os.File, error) {
	nfd, err := unix.Dup(fd)
	if errors.Is(err, unix.EBADF) {
		return nil, fmt.Errorf("cannot write %s: descriptor %d is not open", path, fd)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return os.NewFile(uintptr(nfd), path), nil
}

// checkWritable refuses a file this user may not write (a 0444 file, for
// anyone but root), as curl -o and a shell's > refuse it, rather than
// replacing it by rename, which needs only the directory's permission.
func checkWritable(path string) error {
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// inPlaceReason says why the existing regular file at path (fi) cannot be
// replaced by renaming a temporary file over it, or "" if it can: a mount
// point (a file bind-mounted into a container) fails the rename with EBUSY;
// a file with other hard links would lose them; a directory this user
// cannot write cannot take the temporary file.
func inPlaceReason(path string, fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if st.Nlink > 1 {
		return "it has other hard links"
	}
	dir := filepath.Dir(path)
	var dst unix.Stat_t
	if err := unix.Stat(dir, &dst); err == nil && isMountPoint(path, uint64(st.Dev), uint64(dst.Dev)) {
		return "it is a mount point"
	}
	if !dirWritable(dir) {
		return "its directory " + dir + " is not writable"
	}
	return ""
}

// dirWritable reports whether this user may create files in dir.
func dirWritable(dir string) bool {
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS) == nil
}

// errOwnerNotKept is keepOwner's answer when this user may not give the
// temporary file the replaced file's owner and group.
var errOwnerNotKept = errors.New("cannot keep the file's owner")

// keepOwner gives the temporary file f the owner and group of the file it
// will replace (fi), where they differ; root may, others only for a group
// they belong to.
func keepOwner(f *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	cur, err := f.Stat()
	if err != nil {
		return err
	}
	now := cur.Sys().(*syscall.Stat_t)
	if now.Uid == st.Uid && now.Gid == st.Gid {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return errOwnerNotKept
		}
		return err
	}
	return nil
}

// errLocked is lockTemp's answer for a file another process holds locked.
var errLocked = errors.New("locked by another process")

// lockTemp takes an exclusive lock on a temporary file while a get writes
// it, so another get knows it is not stale. The lock goes with the process:
// a killed get leaves its file unlocked. Where the file system has no locks
// the file is left unlocked, and no other get can take it for stale either.
func lockTemp(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return nil
}

// removeStale removes the file at path if it was last written before
// before and no process holds its lock (see lockTemp): a get killed before
// it could remove its temporary file.
func removeStale(path string, before time.Time) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(before) {
		return
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // a live get is writing it
	}
	// Removed while locked: a get creating a file of this name checks, once
	// it holds the lock, that the name is still its file.
	_ = os.Remove(path)
}
