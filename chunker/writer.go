package chunker

import (
	"context"
	"errors"
	"io"
)

// Writer computes a file's ID from the bytes written to it, chunking and
// hashing them as they arrive (io.Copy into it reads straight into chunk
// buffers through ReadFrom). WithChunkFunc sees every chunk as soon as it
// is hashed, in order, and WithNodeFunc every interior block as soon as it
// is complete, from inside Write, ReadFrom or Finish. With
// WithChunkList(false) and WithNodes(false) its memory does not depend on
// the file's length.
//
// Call Finish to get the result, and Close (safe to defer) to release the
// hashing workers if Finish is not reached. A Writer is not safe for
// concurrent use.
type Writer struct {
	cfg    config
	p      *pipeline
	b      *Builder
	cur    *job // buffer being filled
	index  int
	offset int64
	err    error
}

// NewWriter returns a Writer configured by opts.
func NewWriter(opts ...Option) (*Writer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Writer{cfg: cfg, p: newPipeline(cfg), b: newBuilder(cfg)}, nil
}

// Write chunks p. It returns an error if the chunk callback failed or the
// Writer is finished or closed.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := w.buffer(); err != nil {
			return written, err
		}
		n := copy(w.cur.buf[w.cur.n:], p)
		w.cur.n += n
		written += n
		p = p[n:]
		w.submitIfFull()
	}
	return written, nil
}

// ReadFrom chunks everything r yields until io.EOF, reading directly into
// chunk buffers. It implements io.ReaderFrom, so io.Copy uses it.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := w.buffer(); err != nil {
			return total, err
		}
		n, err := io.ReadFull(r, w.cur.buf[w.cur.n:])
		w.cur.n += n
		total += int64(n)
		w.submitIfFull()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		default:
			return total, err
		}
	}
}

// buffer makes sure a partly filled buffer is ready, first taking the
// hashed chunks out of the window, waiting for one if the window is full.
func (w *Writer) buffer() error {
	if w.err != nil {
		return w.err
	}
	if w.cur != nil {
		return nil
	}
	for w.p.full() || w.p.ready() {
		if err := w.emit(); err != nil {
			return err
		}
	}
	w.cur = w.p.get()
	return nil
}

func (w *Writer) submitIfFull() {
	if w.cur.n == len(w.cur.buf) {
		w.p.submit(w.cur)
		w.cur = nil
	}
}

// emit takes the oldest hashed chunk, adds it to the DAG and shows it to
// the chunk callback.
func (w *Writer) emit() error {
	j := w.p.pop()
	defer w.p.put(j)
	ch := Chunk{Index: w.index, Offset: w.offset, Data: j.data(), CID: rawCID(&j.sum)}
	w.index++
	w.offset += int64(j.n)
	if err := w.b.Add(ch.CID, j.n); err != nil {
		return w.fail(err)
	}
	if w.cfg.chunkFunc != nil {
		if err := w.cfg.chunkFunc(ch); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	w.cur = nil
	w.p.close()
	return err
}

// Finish hashes the last, possibly short, chunk, waits for every chunk and
// returns the file's result. The Writer cannot be used afterwards.
func (w *Writer) Finish() (*Result, error) {
	if w.err != nil {
		return nil, w.err
	}
	// An empty file is one empty leaf, as in IPFS.
	empty := w.index == 0 && w.p.empty()
	if w.cur == nil && empty {
		w.cur = w.p.get()
	}
	if w.cur != nil && (w.cur.n > 0 || empty) {
		w.p.submit(w.cur)
	}
	w.cur = nil
	for !w.p.empty() {
		if err := w.emit(); err != nil {
			return nil, err
		}
	}
	w.fail(ErrClosed)
	res, err := w.b.Finish()
	if err != nil {
		return nil, err
	}
	res.ChunkSize = w.cfg.chunkSize
	return res, nil
}

// Close releases the hashing workers and waits for them to exit. After
// Finish it does nothing; before, it abandons the file. It is idempotent.
func (w *Writer) Close() error {
	if w.err == nil {
		w.fail(ErrClosed)
	}
	return nil
}

// Sum reads r to the end and returns the file's content ID and, by default,
// its chunks and the interior nodes of its DAG. The chunk buffers take
// memory bounded by the chunk size and the number of workers; the chunk list
// and the nodes grow with the file (about 140 bytes per chunk) unless
// WithChunkList(false) and WithNodes(false) drop them. It stops early when
// ctx is done or a callback (WithChunkFunc, WithNodeFunc) fails.
func Sum(ctx context.Context, r io.Reader, opts ...Option) (*Result, error) {
	w, err := NewWriter(opts...)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.ReadFrom(ctxReader{ctx, r}); err != nil {
		return nil, err
	}
	return w.Finish()
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
