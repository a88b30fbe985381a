//go:build unix

package provider

import (
	"fmt"
	"syscall"

	"github.com/satchel-net/satchel/provider/blockstore"
)

// FreeDisk returns a function reporting the bytes the node can still write
// to its block store's file system, for a contract ledger
// (contracts.NewLedger) to count reservations against.
func (s *Server) FreeDisk() func() (uint64, error) {
	bs := s.bs
	return func() (uint64, error) {
		u, err := diskUsageOf(bs)
		return u.Free, err
	}
}

// diskUsageOf reads the file system holding bs: the bytes an unprivileged
// writer may still use, and those used. The space bs holds allocated ahead
// of its records (blockstore.Store.AllocatedAhead) counts free, not used:
// the file system counts it taken, but the store's next blocks go there.
// The last blockstore.IndexReserve bytes do not count free: no block is
// written into them.
func diskUsageOf(bs *blockstore.Store) (DiskStatus, error) {
	dir := bs.Dir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return DiskStatus{}, fmt.Errorf("provider: free disk of %s: %w", dir, err)
	}
	u := diskUsage(st, bs.AllocatedAhead())
	u.Free -= min(u.Free, blockstore.IndexReserve) // kept for the index: no block goes there
	return u, nil
}

// diskUsage is the usage statfs read, with ahead bytes allocated but free
// to the store moved from used to free.
func diskUsage(st syscall.Statfs_t, ahead uint64) DiskStatus {
	bs := uint64(st.Bsize)
	used := (uint64(st.Blocks) - uint64(st.Bfree)) * bs
	ahead = min(ahead, used)
	return DiskStatus{Free: uint64(st.Bavail)*bs + ahead, Used: used - ahead}
}
