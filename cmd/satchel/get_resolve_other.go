//go:build !unix

package main

import (
	"errors"
	"io/fs"
	"path/filepath"
)

// outputDest is where `satchel get -o` writes; descriptors (fd) are named by
// path only on Unix.
type outputDest struct {
	path   string
	fd     int
	linked bool // a symbolic link was followed to path
}

// resolveOutput follows the symbolic links of an existing path.
func resolveOutput(path string) (outputDest, error) {
	p, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return outputDest{path: path, fd: -1}, nil
	}
	return outputDest{path: p, fd: -1, linked: p != filepath.Clean(path)}, err
}
