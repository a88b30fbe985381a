package blockstore

// Reading pack records, and the fdatasync a pack's writers share.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// read reads the size bytes of the block whose record starts at off in
// pack n: directly into an aligned buffer where it can. pooled takes the
// buffer from the pool (hand it back with fileIO.recycle). A pack shorter
// than the record gives what it holds; a missing pack an error wrapping
// fs.ErrNotExist; a size no block has (see checkBlockSize) an error
// wrapping errBlockFileTooLarge.
func (ps *packSet) read(n uint32, off int64, length uint64, pooled bool) ([]byte, error) {
	if err := checkBlockSize(length, "index entry"); err != nil {
		return nil, err
	}
	size := int(length)
	p, err := ps.acquire(n)
	if err != nil {
		return nil, err
	}
	defer ps.release(p)
	var buf []byte
	switch {
	case pooled:
		buf = *ps.io.alignedBuf(size)
	case p.df != nil && ps.io.direct.Load():
		buf = alignedAlloc(size)
	default:
		buf = make([]byte, size)
	}
	got, err := ps.readAt(p, buf, off+hdrSize, size)
	if err != nil {
		if pooled {
			ps.io.recycle(buf)
		}
		return nil, err
	}
	if pooled {
		return buf[:got], nil
	}
	return buf[:got:got], nil
}

// readAt reads up to size bytes at off into buf (whose length, when
// aligned, is size rounded up), directly where it can.
func (ps *packSet) readAt(p *pack, buf []byte, off int64, size int) (int, error) {
	if p.df != nil && ps.io.direct.Load() && len(buf) == roundUp(size) && aligned(buf) {
		got, err := ps.readPack(p.df, buf, off)
		if !errors.Is(err, syscall.EINVAL) {
			return min(got, size), err
		}
		ps.io.direct.Store(false) // refused here: read through the cache from now on
	}
	return ps.readPack(p.f, buf[:size], off)
}

// readRange reads n bytes at off of the block whose record starts at
// recOff in pack pn, through the page cache. A short read gives what the
// pack holds.
func (ps *packSet) readRange(pn uint32, recOff int64, off, n uint64) ([]byte, error) {
	p, err := ps.acquire(pn)
	if err != nil {
		return nil, err
	}
	defer ps.release(p)
	buf := make([]byte, n)
	got, err := ps.readPack(p.f, buf, recOff+hdrSize+int64(off))
	if err != nil {
		return nil, err
	}
	return buf[:got], nil
}

// readHeader reads and decodes the header of the record at off in pack p.
// A header the pack's end cuts short, or one that does not decode (zeros,
// a torn write, block bytes), gives an error wrapping errBadHeader; a
// failed read gives its own error.
func (ps *packSet) readHeader(p *pack, off int64) (recordHeader, error) {
	hdr := make([]byte, hdrSize)
	got, err := ps.readPack(p.f, hdr, off)
	switch {
	case err != nil:
		return recordHeader{}, err
	case got < hdrSize:
		return recordHeader{}, fmt.Errorf("%w: cut short at %d bytes by the pack's end", errBadHeader, got)
	}
	return decodeHeader(hdr)
}

// readUpTo reads len(buf) bytes at off of f, fewer where the file ends
// (not an error), and returns how many it read. A file closed under the
// read gives an error wrapping ErrClosed: the store closed meanwhile, which
// is not a lost pack or file (the caller would quarantine that).
func readUpTo(f *os.File, buf []byte, off int64) (int, error) {
	got, err := f.ReadAt(buf, off)
	switch {
	case errors.Is(err, os.ErrClosed):
		return 0, fmt.Errorf("%s: %w", filepath.Base(f.Name()), ErrClosed)
	case err != nil && !errors.Is(err, io.EOF):
		return 0, err
	}
	return got, nil
}

// groupSync is the fdatasync of one pack shared by its writers: a writer
// waits for a sync that started after its write finished, and starts one
// itself when none is under way.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	syncing bool
	started uint64 // syncs started
	done    uint64 // syncs finished
	err     error  // the first failure: the pack takes no more writes
}

func (g *groupSync) init() { g.cond = sync.NewCond(&g.mu) }

// do returns once a call of sync (the pack's fdatasync) that began after
// the call of do has finished.
func (g *groupSync) do(sync func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	// A sync under way may have started before the caller's write
	// finished: wait for the one after it.
	target := g.started + 1
	for g.done < target && g.err == nil {
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := sync()
		g.mu.Lock()
		g.syncing = false
		g.done = gen
		if err != nil && g.err == nil {
			g.err = err
		}
		g.cond.Broadcast()
	}
	return g.err
}

// failed returns the sync error that ended the pack's writes, if any.
func (g *groupSync) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
