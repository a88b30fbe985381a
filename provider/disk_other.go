//go:build !unix

package provider

// FreeDisk returns nil where the free disk cannot be read: a contract
// ledger then counts reservations against the voucher alone.
func (s *Server) FreeDisk() func() (uint64, error) { return nil }
