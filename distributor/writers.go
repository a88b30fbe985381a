package distributor

import (
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// codeWriter records the status code.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom passes the copy to the connection (sendfile for files).
func (w *codeWriter) ReadFrom(r io.Reader) (int64, error) {
	return readFrom(w.ResponseWriter, r)
}

// readFrom copies r to w: with w's ReadFrom when it has one (net/http's
// HTTP/1 connection sends a file with sendfile and copies the rest through
// a pooled buffer), else with copyPooled (an HTTP/2 writer, a test's
// recorder).
func readFrom(w io.Writer, r io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return copyPooled(w, r)
}

// copyPooled copies r to w through a pooled buffer, never through w's
// ReadFrom: it allocates nothing.
func copyPooled(w io.Writer, r io.Reader) (int64, error) {
	cb := copyBufs.Get().(*copyBuf)
	defer func() {
		cb.w.Writer = nil
		copyBufs.Put(cb)
	}()
	cb.w.Writer = w
	return io.CopyBuffer(&cb.w, r, cb.b)
}

// deadlineWriter gives every write to the client writeTimeout: a client
// that stops reading is cut off, however long the whole answer takes.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
	n  int64
	// span is the reader of the span being copied, kept here so that a
	// span allocates none.
	span io.LimitedReader
}

// copyBufs are the buffers answers are copied through: larger than
// io.Copy's 32 KiB, so a cached chunk goes out in fewer system calls.
var copyBufs = sync.Pool{New: func() any { return &copyBuf{b: make([]byte, 128<<10)} }}

// copyBuf is a pooled copy buffer with the writer it copies to, kept
// beside it so that hiding the writer's ReadFrom allocates nothing.
type copyBuf struct {
	b []byte
	w writerOnly
}

// sendSpan is the most bytes sent from a block file under one write
// deadline.
const sendSpan = 128 << 10

// ReadFrom copies r to the client. An object's bytes that lie in cached
// block files go out with the kernel's file-to-socket copy (sendfile, as
// http.FileServer does, through sendFile), the others through a pooled
// buffer. A span allocates nothing.
func (w *deadlineWriter) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	var or *objectReader
	if ok {
		or, ok = lr.R.(*objectReader)
	}
	if !ok {
		return copyPooled(w, r)
	}
	var total int64
	for lr.N > 0 {
		f, n, err := or.fileSpan(min(lr.N, sendSpan))
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		var m int64
		if f != nil {
			m, err = w.sendFile(f, n)
			or.advance(m, err)
		} else {
			w.span = io.LimitedReader{R: or, N: n}
			m, err = copyPooled(w, &w.span)
		}
		total += m
		lr.N -= m
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// sendFile sends n bytes of f from its offset with the connection's
// ReadFrom (the kernel's file-to-socket copy on an HTTP/1 connection; a
// pooled buffer else), each span of at most sendSpan under its own write
// deadline.
func (w *deadlineWriter) sendFile(f *os.File, n int64) (int64, error) {
	var total int64
	for total < n {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
		w.span = io.LimitedReader{R: f, N: min(n-total, sendSpan)}
		m, err := readFrom(w.ResponseWriter, &w.span)
		total += m
		w.n += m
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// writerOnly hides ReadFrom, so io.CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}
