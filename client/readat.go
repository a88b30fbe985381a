package client

import (
	"errors"
	"io"
)

// cachedLeaf is one chunk of the object a Reader keeps: ReadAt in small
// pieces (io.SectionReader, http.ServeContent) then costs one fetch per
// chunk, not one per call.
type cachedLeaf struct {
	off  int64
	data []byte // never written once cached; nil when none
}

// cached returns the bytes of the cached chunk from off on, if it holds
// off.
func (r *Reader) cached(off int64) []byte {
	r.mu.Lock()
	l := r.last
	r.mu.Unlock()
	if l.data == nil || off < l.off || off >= l.off+int64(len(l.data)) {
		return nil
	}
	return l.data[off-l.off:]
}

// keepLeaf caches a copy of the chunk l, whose bytes are data.
func (r *Reader) keepLeaf(l leaf, data []byte) {
	kept := cachedLeaf{off: l.off, data: append([]byte(nil), data...)}
	r.mu.Lock()
	r.last = kept
	r.mu.Unlock()
}

// ReadAt reads len(p) bytes at offset off. It implements io.ReaderAt: it
// returns io.EOF with fewer bytes at the end of the object. The Reader
// keeps the last chunk it read, so reads in small pieces in order fetch
// each chunk once; the context given to Open bounds the fetches.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("client: negative offset")
	}
	if err := r.startRead(); err != nil {
		return 0, err
	}
	defer r.endRead()
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	// Bytes the cached chunk holds are copied, the rest fetched.
	done := int64(copy(p[:n], r.cached(off)))
	if done < n {
		bw := &sliceWriter{b: p[done:n]}
		_, err := r.writeRange(r.ctx, bw, off+done, n-done, r.keepLeaf)
		if err != nil {
			return int(done) + bw.n, err
		}
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

type sliceWriter struct {
	b []byte
	n int
}

func (s *sliceWriter) Write(p []byte) (int, error) {
	n := copy(s.b[s.n:], p)
	s.n += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}
