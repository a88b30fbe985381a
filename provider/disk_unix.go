//go:build unix

package provider

import (
	"fmt"
	"syscall"
)

// FreeDisk returns a function reporting the bytes the node can still write
// to its block store's file system, for a contract ledger
// (contracts.NewLedger) to count reservations against.
func (s *Server) FreeDisk() func() (uint64, error) {
	dir := s.bs.Dir()
	return func() (uint64, error) {
		u, err := diskUsageOf(dir)
		return u.Free, err
	}
}

// diskUsageOf reads the file system holding dir: the bytes an unprivileged
// writer may still use, and those used.
func diskUsageOf(dir string) (DiskStatus, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return DiskStatus{}, fmt.Errorf("provider: free disk of %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return DiskStatus{Free: uint64(st.Bavail) * bs, Used: (uint64(st.Blocks) - uint64(st.Bfree)) * bs}, nil
}
