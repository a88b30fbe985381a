package blockstore

import (
	"os"
	"strings"
	"syscall"
	"unsafe"
)

// thpEnabled is where Linux says when it gives transparent huge pages.
const thpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled"

// hugeOnRequest reports whether the transparent huge pages setting (the
// text of thpEnabled: its modes, the one in force in brackets) gives huge
// pages to a mapping that asks (MADV_HUGEPAGE): not with [never], where
// madvise still succeeds but the buffers would be ordinary pages kept for
// the life of the process for nothing. A setting that cannot be read or
// parsed leaves it to madvise (which fails where the kernel has none).
func hugeOnRequest(setting string) bool {
	_, rest, ok := strings.Cut(setting, "[")
	mode, _, closed := strings.Cut(rest, "]")
	return !ok || !closed || mode != "never"
}

// hugeSetting returns the transparent huge pages setting, or "" where it
// cannot be read.
func hugeSetting() string {
	b, _ := os.ReadFile(thpEnabled)
	return string(b)
}

// mapHugeBufs maps n buffers of size bytes (a multiple of the huge page
// size), each aligned to size, asks for huge pages for them
// (MADV_HUGEPAGE) and returns them in a channel of capacity n; nil when
// the system maps none or gives no huge pages on request (hugeOnRequest).
func mapHugeBufs(n, size int) chan []byte {
	if !hugeOnRequest(hugeSetting()) {
		return nil
	}
	m, err := syscall.Mmap(-1, 0, (n+1)*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	whole := m
	off := (size - int(uintptr(unsafe.Pointer(&m[0]))&uintptr(size-1))) & (size - 1)
	m = m[off : off+n*size : off+n*size] // the slack around it stays mapped, unused
	if err := syscall.Madvise(m, syscall.MADV_HUGEPAGE); err != nil {
		// No transparent huge pages here: the heap's buffers do as well.
		_ = syscall.Munmap(whole)
		return nil
	}
	ch := make(chan []byte, n)
	for i := range n {
		ch <- m[i*size : (i+1)*size : (i+1)*size]
	}
	return ch
}
