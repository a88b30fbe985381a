package main

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The output of `satchel get` to a regular file is written with direct I/O
// where the file system takes it: on these machines copying a GiB into the
// page cache costs ~2 CPU seconds of the kernel's, against ~0.1 for the same
// bytes written straight to the device, and a get is bound by CPU. The
// bytes are gathered into large aligned buffers (direct I/O needs the
// buffer, the offset and the length aligned), written by a goroutine of
// their own while the next buffers fill, and the file is cut to its length
// at the end.
//
// A direct write returns only once the device has the bytes, and a shared
// disk now and then takes tens of milliseconds over one: with only a
// buffer or two to fill meanwhile, the download stopped behind it (a GiB
// written with two 8 MiB buffers waited 0.3–0.7 s on the disk, a tenth to
// a fifth of the get, where eight 4 MiB ones waited ~1 ms). So the writer
// takes more buffers, up to directBuffers, when the flusher is behind, and
// only then: a disk that keeps up leaves it at two. Writes of 4 MiB rather
// than 8 also hold up a provider's 1 MiB block read from the same disk
// half as long.

const (
	// directAlign is the alignment direct I/O gets: 4 KiB covers every
	// device block size in use.
	directAlign = 4096
	// directBufSize is each buffer: large sequential writes.
	directBufSize = 4 << 20
	// directBuffers is the most buffers a writer holds (32 MiB): the one
	// filling, the one being written, and the rest for the disk's stalls.
	directBuffers = 8
)

// directWriter writes a new file with direct I/O through up to
// directBuffers buffers.
type directWriter struct {
	f       *os.File
	buf     []byte // filling
	n       int    // bytes in buf
	off     int64  // file offset of buf
	written int64  // bytes accepted
	buffers int    // allocated so far
	full    chan directChunk
	free    chan []byte // cap directBuffers: the flusher never waits to hand one back
	done    chan error
	failed  atomic.Pointer[error] // the flusher's first error
}

type directChunk struct {
	b   []byte
	off int64
}

// openDirect opens path (an existing, empty file) for direct writes, or
// returns an error wrapping errNoDirect where the file system refuses them.
func openDirect(path string) (*directWriter, error) {
	if oDirect == 0 {
		return nil, errNoDirect
	}
	f, err := os.OpenFile(path, os.O_WRONLY|oDirect, 0)
	if errors.Is(err, syscall.EINVAL) {
		return nil, errNoDirect
	}
	if err != nil {
		return nil, err
	}
	w := &directWriter{f: f, buf: alignedBuffer(directBufSize), buffers: 1,
		full: make(chan directChunk, directBuffers), free: make(chan []byte, directBuffers), done: make(chan error, 1)}
	go w.flushLoop()
	return w, nil
}

var errNoDirect = errors.New("direct I/O not supported")

// flushLoop writes the full buffers in order and hands each back.
func (w *directWriter) flushLoop() {
	var err error
	for c := range w.full {
		if err == nil {
			if _, err = w.f.WriteAt(c.b, c.off); err != nil {
				err = fmt.Errorf("write output: %w", err)
				w.failed.Store(&err)
			}
		}
		w.free <- c.b[:cap(c.b)]
	}
	w.done <- err
}

// Write gathers p into the buffer, handing each full buffer to the
// flusher.
func (w *directWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if err := w.failed.Load(); err != nil {
			return total, *err
		}
		m := copy(w.buf[w.n:], p)
		w.n += m
		total += m
		w.written += int64(m)
		p = p[m:]
		if w.n == len(w.buf) {
			w.full <- directChunk{w.buf, w.off} // never waits: room for every buffer
			w.off += int64(w.n)
			w.buf, w.n = w.nextBuffer(), 0
		}
	}
	return total, nil
}

// nextBuffer returns a buffer to fill: one the flusher has written, else a
// new one while there are fewer than directBuffers, else the next the
// flusher hands back.
func (w *directWriter) nextBuffer() []byte {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.buffers < directBuffers {
		w.buffers++
		return alignedBuffer(directBufSize)
	}
	return <-w.free
}

// finish writes what is left (padded to the alignment, then cut off),
// waits for the flusher and closes the direct descriptor.
func (w *directWriter) finish() error {
	var err error
	if e := w.failed.Load(); e != nil {
		err = *e
	}
	if err == nil && w.n > 0 {
		pad := (w.n + directAlign - 1) &^ (directAlign - 1)
		clear(w.buf[w.n:pad])
		w.full <- directChunk{w.buf[:pad], w.off}
	}
	close(w.full)
	if ferr := <-w.done; err == nil {
		err = ferr
	}
	if err == nil && w.n > 0 {
		err = w.f.Truncate(w.written)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// alignedBuffer allocates n bytes whose first byte is directAlign-aligned.
func alignedBuffer(n int) []byte {
	raw := make([]byte, n+directAlign)
	off := (directAlign - int(uintptr(unsafe.Pointer(&raw[0]))&(directAlign-1))) & (directAlign - 1)
	return raw[off : off+n : off+n]
}
