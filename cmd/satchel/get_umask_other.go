//go:build !unix

package main

import "io/fs"

// newFileMode is the mode a new output file gets where there is no umask.
func newFileMode() fs.FileMode { return 0o666 }
