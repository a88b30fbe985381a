package distributor

import (
	"io"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// read returns the bytes of block bc of obj when cached, checked against
// their trailer. A block the index lists whose file cannot be read whole
// is forgotten, and one that fails its check dropped (corrupt), so that it
// is fetched (and cached) again.
func (c *cache) read(obj chain.ObjectID, bc cid.Cid) ([]byte, bool) {
	f, size, ok := c.take(obj, bc)
	if !ok {
		return nil, false
	}
	b := make([]byte, size+blockTrailer)
	if n, _ := f.f.ReadAt(b, 0); int64(n) < size+blockTrailer {
		_ = f.f.Close()
		c.forget(obj, bc, f.gen)
		return nil, false
	}
	b, t := b[:size:size], b[size:]
	if !trailerMatches(b, t) && !c.corrupt(obj, bc, f.f, f.gen, size) {
		_ = f.f.Close()
		return nil, false
	}
	c.release(obj, bc, f)
	return b, true
}

// send calls out with block file f of block bc of obj (size bytes), which
// open returned, positioned at its start, and then gives it back; out
// returns how many bytes it read from there (none for a HEAD). After a
// failure forget looks whether the file was torn (sent short).
func (c *cache) send(obj chain.ObjectID, bc cid.Cid, f openFile, size int64, out func(cid.Cid, *os.File, int64) (int64, error)) error {
	if f.pos != 0 {
		if _, err := f.f.Seek(0, io.SeekStart); err != nil {
			_ = f.f.Close()
			return err
		}
	}
	n, err := out(bc, f.f, size)
	f.pos = n
	if err != nil {
		f.pos = -1 // not known: the next reader seeks
		c.forget(obj, bc, f.gen)
	}
	c.release(obj, bc, f)
	return err
}

// forget drops block bc of obj, of file generation gen, from the index
// when its file is missing, not a file or not its size (lost outside the
// node's control): otherwise every request would find it listed, fail to
// read it and fetch it, never caching it again.
func (c *cache) forget(obj chain.ObjectID, bc cid.Cid, gen uint64) {
	if c.drop(obj, bc, gen, func(path string) bool {
		st, err := os.Stat(path)
		return err != nil || !st.Mode().IsRegular() || st.Size() != c.blockSize(obj, bc)+blockTrailer
	}) {
		c.log.Warn("a cached block file is missing or torn; it will be fetched again", "object", obj, "cid", bc)
	}
}

// blockSize returns the size of block bc of obj (under mu).
func (c *cache) blockSize(obj chain.ObjectID, bc cid.Cid) int64 {
	return c.objects[obj].blocks[bc].size
}

// drop takes block bc of obj out of the index and deletes its file when
// generation gen of it is cached and bad says its file (at path) is bad;
// it reports whether it did. It checks under mu, where no put can be
// placing a new file.
func (c *cache) drop(obj chain.ObjectID, bc cid.Cid, gen uint64, bad func(path string) bool) bool {
	var idle []*os.File
	c.mu.Lock()
	ok := c.current(obj, bc, gen) && bad(c.path(obj, bc))
	if ok {
		o := c.objects[obj]
		_ = os.Remove(c.path(obj, bc))
		c.account(o, bc, -o.blocks[bc].size)
		delete(o.blocks, bc)
		k := blockKey{obj, bc}
		for _, f := range c.files[k] {
			idle = append(idle, f.f)
		}
		c.nfiles -= len(c.files[k])
		delete(c.files, k)
	}
	c.mu.Unlock()
	closeAll(idle)
	if ok {
		c.m.dropped.Inc()
	}
	return ok
}

// open returns block bc of obj open for reading, and its size, when
// cached and its file passes the check of its trailer (checkFile; one that
// fails is dropped, see corrupt). Give the file back with release.
func (c *cache) open(obj chain.ObjectID, bc cid.Cid) (openFile, int64, bool) {
	f, size, ok := c.take(obj, bc)
	if !ok {
		return openFile{}, 0, false
	}
	if !checkFile(f.f, size) && !c.corrupt(obj, bc, f.f, f.gen, size) {
		_ = f.f.Close()
		return openFile{}, 0, false
	}
	return f, size, true
}

// take returns block bc of obj open for reading, and its size, when
// cached, unchecked: one kept open since a request before, else the file
// opened.
func (c *cache) take(obj chain.ObjectID, bc cid.Cid) (openFile, int64, bool) {
	c.mu.Lock()
	o := c.objects[obj]
	if o == nil {
		c.mu.Unlock()
		return openFile{}, 0, false
	}
	b, ok := o.blocks[bc]
	if !ok {
		c.mu.Unlock()
		return openFile{}, 0, false
	}
	k := blockKey{obj, bc}
	if fs := c.files[k]; len(fs) > 0 {
		f := fs[len(fs)-1]
		if len(fs) == 1 {
			delete(c.files, k)
		} else {
			c.files[k] = fs[:len(fs)-1]
		}
		c.nfiles--
		c.mu.Unlock()
		return f, b.size, true
	}
	c.mu.Unlock()
	f, err := os.Open(c.path(obj, bc))
	if err != nil {
		c.forget(obj, bc, b.gen) // unless evicted meanwhile
		return openFile{}, 0, false
	}
	return openFile{f: f, gen: b.gen}, b.size, true
}

// release gives back a file open returned: it stays open for the next
// request unless its block left the cache meanwhile (or left and came
// back: a new file). When maxOpenFiles are open, an idle one picked at
// random is closed.
func (c *cache) release(obj chain.ObjectID, bc cid.Cid, f openFile) {
	var shut *os.File
	c.mu.Lock()
	if !c.current(obj, bc, f.gen) {
		shut = f.f
	} else {
		if c.nfiles >= maxOpenFiles {
			for k, fs := range c.files {
				shut = fs[len(fs)-1].f
				if len(fs) == 1 {
					delete(c.files, k)
				} else {
					c.files[k] = fs[:len(fs)-1]
				}
				c.nfiles--
				break
			}
		}
		k := blockKey{obj, bc}
		c.files[k] = append(c.files[k], f)
		c.nfiles++
	}
	c.mu.Unlock()
	if shut != nil {
		_ = shut.Close()
	}
}

// idleFiles takes the idle open files of o, which left the cache (under
// mu; the caller closes them).
func (c *cache) idleFiles(id chain.ObjectID, o *cachedObject) []*os.File {
	var out []*os.File
	for bc := range o.blocks {
		k := blockKey{id, bc}
		if fs, ok := c.files[k]; ok {
			for _, f := range fs {
				out = append(out, f.f)
			}
			c.nfiles -= len(fs)
			delete(c.files, k)
		}
	}
	return out
}

// closeFiles closes the idle open files (the node stops).
func (c *cache) closeFiles() {
	c.mu.Lock()
	var all []*os.File
	for _, fs := range c.files {
		for _, f := range fs {
			all = append(all, f.f)
		}
	}
	clear(c.files)
	c.nfiles = 0
	c.mu.Unlock()
	closeAll(all)
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}
