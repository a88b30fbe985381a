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

// isMountPoint reports whether path (whose device is dev, its directory's
// dirDev) is the root of a mount, as the devices tell it.
func isMountPoint(_ string, dev, dirDev uint64) bool { return dev != dirDev }
