//go:build !unix

package fsutil

import "errors"

// Space is not read here: it returns errors.ErrUnsupported.
func Space(string) (free, total uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
