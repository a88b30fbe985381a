//go:build !unix

package provider

import (
	"errors"

	"github.com/satchel-net/satchel/provider/blockstore"
)

// FreeDisk returns nil where the free disk cannot be read: a contract
// ledger then counts reservations against the voucher alone.
func (s *Server) FreeDisk() func() (uint64, error) { return nil }

// diskUsageOf is not known here: the status shows no disk.
func diskUsageOf(*blockstore.Store) (DiskStatus, error) {
	return DiskStatus{}, errors.New("provider: free disk is not known on this platform")
}
