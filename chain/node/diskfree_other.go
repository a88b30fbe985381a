//go:build !unix

package node

// freeBytes cannot tell the free bytes on this platform.
func freeBytes(string) (uint64, bool) { return 0, false }
