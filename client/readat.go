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
	data []byte // never written once cached
}

// readAheadBytes bounds the chunks a Reader keeps ahead of sequential
// ReadAt calls (at least one chunk, at most the fetch window).
const readAheadBytes = 8 << 20

// cached returns the bytes of a kept chunk from off on, if one holds off.
func (r *Reader) cached(off int64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.kept {
		if off >= l.off && off < l.off+int64(len(l.data)) {
			return l.data[off-l.off:]
		}
	}
	return nil
}

// readAhead returns how many bytes past a read at off a ReadAt fetches and
// keeps: none unless the read goes on where the last one ended (or a kept
// chunk ended), then chunks up to readAheadBytes, sized like the last chunk
// kept.
func (r *Reader) readAhead(off int64, continued bool) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if (!continued && off != r.next) || len(r.kept) == 0 {
		return 0
	}
	chunk := int64(len(r.kept[len(r.kept)-1].data))
	if chunk == 0 {
		return 0
	}
	n := min(max(readAheadBytes/chunk, 1), int64(r.c.opts.fetchWindow))
	return n * chunk
}

// ReadAt reads len(p) bytes at offset off. It implements io.ReaderAt: it
// returns io.EOF with fewer bytes at the end of the object. The Reader
// keeps the last chunk it read, so reads in small pieces in order fetch
// each chunk once; and when reads go on in order, it fetches the chunks
// after the one asked for together, and keeps them (up to 8 MiB, at most
// the fetch window), so those reads wait for the network once per batch of
// chunks, not once per chunk. The context given to Open bounds the fetches.
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
	// Bytes the kept chunks hold are copied, the rest fetched.
	var done int64
	for done < n {
		m := int64(copy(p[done:n], r.cached(off+done)))
		if m == 0 {
			break
		}
		done += m
	}
	if done < n {
		ahead := r.readAhead(off, done > 0)
		m, err := r.fetchKept(p[done:n], off+done, ahead)
		if err != nil && ahead > 0 {
			// The chunks read ahead are a guess: one that cannot be
			// fetched fails only a read that asks for its bytes.
			var m2 int
			m2, err = r.fetchKept(p[done+int64(m):n], off+done+int64(m), 0)
			m += m2
		}
		if err != nil {
			return int(done) + m, err
		}
	}
	r.mu.Lock()
	r.next = off + n
	r.mu.Unlock()
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// fetchKept fetches len(p) bytes at off into p, and ahead bytes after them,
// and keeps the chunk holding the end of p and those after it. It returns
// the bytes of p filled; an error past them (in the bytes ahead) is
// no error.
func (r *Reader) fetchKept(p []byte, off, ahead int64) (int, error) {
	bw := &sliceWriter{b: p}
	end := off + int64(len(p))
	var kept []cachedLeaf
	_, err := r.writeRange(r.ctx, bw, off, int64(len(p))+ahead, func(l leaf, data []byte) {
		if l.off+int64(len(data)) >= end {
			kept = append(kept, cachedLeaf{off: l.off, data: append([]byte(nil), data...)})
		}
	})
	if len(kept) > 0 {
		r.mu.Lock()
		r.kept = kept
		r.mu.Unlock()
	}
	if err != nil && bw.n < len(p) {
		return bw.n, err
	}
	return bw.n, nil
}

// sliceWriter fills b and discards what comes after (a read ahead's
// bytes, which the chunks kept hold).
type sliceWriter struct {
	b []byte
	n int
}

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.n += copy(s.b[s.n:], p)
	return len(p), nil
}
