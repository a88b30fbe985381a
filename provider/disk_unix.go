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
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, fmt.Errorf("provider: free disk of %s: %w", dir, err)
		}
		return uint64(st.Bavail) * uint64(st.Bsize), nil
	}
}
