package blockstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Pack records are written and read, and legacy block files read, with
// direct I/O where the file system allows it: a provider stores far more than it reads back soon, and on
// these machines growing the page cache with freshly written blocks costs
// two to ten times the CPU of the write itself (see docs/ARCHITECTURE.md,
// "Storage engine"). Direct I/O needs the buffer, the length and the file
// offset aligned to the device's block size, so records are staged in
// aligned buffers and padded to a multiple of it (see packrecord.go). A
// file system that
// refuses direct I/O (tmpfs before Linux 6.6, some network file systems)
// turns it off for the store, which then uses the page cache like any
// file.

// ioAlign is the alignment direct I/O gets: 4 KiB covers every device
// block size in use.
const ioAlign = 4096

// fileIO holds the aligned buffers records are staged and read in, and
// reads legacy block files.
type fileIO struct {
	direct atomic.Bool
	bufs   sync.Pool // *[]byte, aligned, cap a multiple of ioAlign
}

func newFileIO(direct bool) *fileIO {
	f := &fileIO{}
	f.direct.Store(direct && oDirect != 0)
	return f
}

// alignedBuf returns a buffer of n bytes (rounded up to ioAlign) whose
// first byte is ioAlign-aligned, from the pool when it has one big enough.
func (f *fileIO) alignedBuf(n int) *[]byte {
	n = roundUp(n)
	if p, ok := f.bufs.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := alignedAlloc(n)
	return &b
}

// alignedAlloc allocates n bytes rounded up to ioAlign, ioAlign-aligned.
func alignedAlloc(n int) []byte {
	n = roundUp(n)
	raw := make([]byte, n+ioAlign)
	off := (ioAlign - int(uintptr(unsafe.Pointer(&raw[0]))&(ioAlign-1))) & (ioAlign - 1)
	return raw[off : off+n : off+n]
}

func (f *fileIO) putBuf(p *[]byte) { f.bufs.Put(p) }

func roundUp(n int) int { return (n + ioAlign - 1) &^ (ioAlign - 1) }

// aligned reports whether b starts on an ioAlign boundary.
func aligned(b []byte) bool {
	return cap(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(ioAlign-1) == 0
}

// read returns the whole content of the block file at path, in a buffer of
// its own. A file larger than any block is not read: its error wraps
// errBlockFileTooLarge.
func (f *fileIO) read(path string) ([]byte, error) {
	return f.readWith(path, false)
}

// readPooled is read into an aligned buffer from the pool; hand it back
// with recycle once done with it (or drop it: the collector takes it).
func (f *fileIO) readPooled(path string) ([]byte, error) {
	return f.readWith(path, true)
}

func (f *fileIO) readWith(path string, pooled bool) ([]byte, error) {
	if f.direct.Load() {
		data, err := f.readFile(path, oDirect, pooled)
		if !errors.Is(err, syscall.EINVAL) {
			return data, err
		}
	}
	return f.readFile(path, 0, pooled)
}

// recycle hands a buffer readPooled returned back to the pool. Anything
// else (not aligned, not a whole number of aligned blocks) is dropped: the
// pool's buffers are read into with direct I/O.
func (f *fileIO) recycle(data []byte) {
	b := data[:cap(data)]
	if cap(b) == 0 || cap(b)%ioAlign != 0 || !aligned(b) {
		return
	}
	f.putBuf(&b)
}

// readFile reads the file at path, opened with the extra flags. With
// oDirect reads are whole aligned blocks into an aligned buffer; a refusal
// is an error wrapping syscall.EINVAL. pooled takes the buffer from the
// pool, and leaves its capacity whole so recycle can return it.
func (f *fileIO) readFile(path string, flags int, pooled bool) ([]byte, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|flags, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if err := checkBlockSize(uint64(size), "block file"); err != nil {
		return nil, err
	}
	var buf []byte
	switch {
	case pooled:
		buf = *f.alignedBuf(int(size))
	case flags&oDirect != 0:
		buf = alignedAlloc(int(size))
	default:
		buf = make([]byte, size)
	}
	done := func(n int) []byte {
		if pooled {
			return buf[:n]
		}
		return buf[:n:n]
	}
	total := 0
	for total < int(size) {
		n, err := file.Read(buf[total:])
		total += n
		switch {
		case err == io.EOF || (err == nil && n == 0):
			// Shrunk since Stat: what is there is the block, and the
			// caller's CID check judges it.
			return done(total), nil
		case err != nil:
			if pooled {
				f.recycle(buf)
			}
			return nil, err
		}
	}
	return done(total), nil
}

// errBlockFileTooLarge marks a block file, or a pack's index entry or
// record header, claiming more bytes than any block has: what it names is
// not the block.
var errBlockFileTooLarge = errors.New("block file too large")

// maxBlockFile bounds the size of a block: what a read allocates for one,
// and what Put takes.
const maxBlockFile = 64 << 20

// checkBlockSize returns an error wrapping errBlockFileTooLarge if size
// (of what: a block file, an index entry, a record header) is more than any
// block's (Put refuses such a block: see checkPutSize). Every read of a block's bytes, from a pack or a
// legacy file, checks it before it allocates.
func checkBlockSize(size uint64, what string) error {
	if size > maxBlockFile {
		return fmt.Errorf("%w: %s of %d bytes, more than %d", errBlockFileTooLarge, what, size, maxBlockFile)
	}
	return nil
}
