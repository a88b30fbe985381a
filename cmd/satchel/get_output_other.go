//go:build !linux

package main

import "os"

// syncRange does nothing where sync_file_range does not exist: the final
// fsync writes the whole file.
func syncRange(*os.File, int64, int64) error { return nil }

// oDirect is 0 where the output is never written with direct I/O.
const oDirect = 0

// freeSpace cannot tell here: a get that does not fit fails when the disk
// is full.
func freeSpace(*os.File) (uint64, bool) { return 0, false }

// isMountRoot cannot tell here; a mount point on another device is still
// told by its device number.
func isMountRoot(string) bool { return false }
