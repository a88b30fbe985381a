//go:build !linux

package blockstore

import (
	"errors"
	"os"
)

// oDirect is zero where direct I/O is not used: files go through the page
// cache.
const oDirect = 0

// punchHole is unsupported here: a deleted record's space comes back only
// when its whole pack is unlinked.
func punchHole(*os.File, int64, int64) error {
	return errors.ErrUnsupported
}

// allocateFile is unsupported here: writes extend a pack.
func allocateFile(*os.File, int64, int64) error {
	return errors.ErrUnsupported
}

// fdatasync is fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
