package blockstore

import (
	"os"
	"syscall"
)

// oDirect opens a file for direct I/O.
const oDirect = syscall.O_DIRECT

// Flags of fallocate(2) that free a range and keep the file's size.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// punchHole frees length bytes of f at off: they read as zeros and take no
// space. EOPNOTSUPP where the file system cannot.
func punchHole(f *os.File, off, length int64) error {
	return control(f, func(fd int) error {
		return syscall.Fallocate(fd, fallocPunchHole|fallocKeepSize, off, length)
	})
}

// allocateFile allocates length bytes of f at off (fallocate, mode 0: the
// size grows to cover them, and they read as zeros until written).
// EOPNOTSUPP where the file system cannot.
func allocateFile(f *os.File, off, length int64) error {
	return control(f, func(fd int) error {
		return syscall.Fallocate(fd, 0, off, length)
	})
}

// fdatasync makes f's data, and the size needed to read it, durable.
func fdatasync(f *os.File) error {
	return control(f, syscall.Fdatasync)
}

func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}
