package blockstore

import (
	"syscall"
	"unsafe"
)

// mapHugeBufs maps n buffers of size bytes (a multiple of the huge page
// size), each aligned to size, asks for huge pages for them
// (MADV_HUGEPAGE) and returns them in a channel of capacity n; nil when
// the system maps none or gives no huge pages on request.
func mapHugeBufs(n, size int) chan []byte {
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
