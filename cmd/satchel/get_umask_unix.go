//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// processUmask is the umask the command started with. It is read once, at
// start, since reading it means setting it: no file is being created then.
var processUmask = func() int {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return m
}()

// newFileMode is the mode a new output file gets: 0666 less the umask.
func newFileMode() fs.FileMode { return 0o666 &^ fs.FileMode(processUmask) }
