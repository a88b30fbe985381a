//go:build unix

package distributor

import "syscall"

// openFileLimit returns the process's soft limit on open files (Go raises
// it to the hard limit at start on Linux), or 0 when it cannot be read.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, 1<<30))
}
