//go:build unix

package node

import "golang.org/x/sys/unix"

// freeBytes returns the bytes free to an unprivileged writer on the file
// system holding dir; ok is false when it cannot tell.
func freeBytes(dir string) (free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
