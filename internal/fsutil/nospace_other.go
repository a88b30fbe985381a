//go:build !linux

package fsutil

import (
	"errors"
	"syscall"
)

// NoSpace reports whether err says the disk is full.
func NoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
