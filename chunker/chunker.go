package chunker

import (
	"errors"
	"io"

	"github.com/ipfs/go-cid"
)

// Chunk is one fixed-size piece of a stream with its content ID.
type Chunk struct {
	// Index is the chunk's position in the file, from 0.
	Index int
	// Offset is the position of the chunk's first byte in the file.
	Offset int64
	// Data is the chunk's bytes. It is borrowed: it stays valid only until
	// the next call to Next or Close, or until the chunk callback returns.
	Data []byte
	// CID is the chunk's content ID (CIDv1, raw codec, sha2-256).
	CID cid.Cid
}

// Info returns the chunk's metadata without its bytes.
func (c Chunk) Info() ChunkInfo {
	return ChunkInfo{CID: c.CID, Offset: c.Offset, Size: len(c.Data)}
}

// Chunker reads a stream and hands out its chunks in order, hashed on a
// pool of workers while the next chunks are read. It reads from r only
// inside Next, so a Chunker owns no goroutine that blocks on r.
//
// The chunks are exactly the leaves of the file's DAG: an empty stream has
// one empty chunk. A Chunker is not safe for concurrent use.
type Chunker struct {
	r      io.Reader
	cfg    config
	p      *pipeline
	prev   *job // the buffer lent to the caller by the last Next
	index  int
	offset int64
	eof    bool
	err    error
}

// New returns a Chunker reading r. The options set the chunk size and the
// number of hashing workers; call Close when done unless Next has returned
// io.EOF or an error.
func New(r io.Reader, opts ...Option) (*Chunker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Chunker{r: r, cfg: cfg, p: newPipeline(cfg)}, nil
}

// Next returns the next chunk, or io.EOF after the last one. Any other error
// is from the reader (or ErrClosed) and is returned again by later calls.
// The returned Chunk.Data is valid until the next call to Next or Close.
func (c *Chunker) Next() (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	if c.prev != nil {
		c.p.put(c.prev)
		c.prev = nil
	}
	// Read one chunk per call while there is room, so the workers stay
	// busy, and hand out the oldest chunk as soon as it is hashed.
	for {
		if !c.eof && !c.p.full() {
			if err := c.read(); err != nil {
				c.fail(err)
				return Chunk{}, err
			}
		}
		if c.p.empty() {
			c.fail(io.EOF)
			return Chunk{}, io.EOF
		}
		if c.eof || c.p.full() || c.p.ready() {
			break
		}
	}
	j := c.p.pop()
	c.prev = j
	ch := Chunk{Index: c.index, Offset: c.offset, Data: j.data(), CID: rawCID(&j.sum)}
	c.index++
	c.offset += int64(j.n)
	return ch, nil
}

// read reads the next chunk into a buffer and submits it for hashing.
func (c *Chunker) read() error {
	j := c.p.get()
	n, err := io.ReadFull(c.r, j.buf)
	j.n = n
	switch {
	case err == nil:
		c.p.submit(j)
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		c.eof = true
		// An empty stream is one empty leaf, as in IPFS.
		if n > 0 || c.index == 0 && c.p.empty() {
			c.p.submit(j)
		} else {
			c.p.put(j)
		}
		return nil
	default:
		c.p.put(j)
		return err
	}
}

// fail records a sticky error and releases the workers.
func (c *Chunker) fail(err error) {
	c.err = err
	c.prev = nil
	c.p.close()
}

// Close stops the hashing workers and waits for them to exit. It does not
// close the underlying reader. Close is idempotent and safe after io.EOF.
func (c *Chunker) Close() error {
	if c.err == nil {
		c.fail(ErrClosed)
	}
	return nil
}
