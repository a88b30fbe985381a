package distributor

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
)

// blockTrailer is the bytes a block file holds after its block: the
// block's CRC-32C (Castagnoli, which CPUs compute in hardware), big-endian.
// Every read of a cached block checks it before a byte of the block is
// sent, so a file torn by a power loss or rotten on disk is never served.
const blockTrailer = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// trailer returns the trailer of block b.
func trailer(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))
}

// trailerMatches reports whether t is the trailer of block b.
func trailerMatches(b, t []byte) bool {
	return len(t) == blockTrailer && binary.BigEndian.Uint32(t) == crc32.Checksum(b, castagnoli)
}

// writeTrailer writes the trailer of block b after it in the file at path
// (a file of the format before 2, or one whose trailer went bad).
func (c *cache) writeTrailer(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(trailer(b), int64(len(b)))
	if err == nil {
		err = f.Truncate(int64(len(b)) + blockTrailer) // a file longer than that is torn
	}
	return errors.Join(err, f.Close())
}

// checkBufSize is the piece a block file is checked in; checkBufs holds
// those buffers, so a check holds no block in memory.
const checkBufSize = 128 << 10

var checkBufs = sync.Pool{New: func() any { b := make([]byte, checkBufSize); return &b }}

// checkFile reports whether f holds a block of size bytes followed by its
// trailer, and nothing more, reading it through a pooled buffer (from the
// page cache, where the send that follows finds it): one read for a block
// that fits the buffer. It leaves f's offset alone.
func checkFile(f *os.File, size int64) bool {
	bp := checkBufs.Get().(*[]byte)
	defer checkBufs.Put(bp)
	buf := *bp
	end := size + blockTrailer
	var sum uint32
	var t [blockTrailer]byte
	off := int64(0)
	for {
		// Up to one byte past the trailer: a file longer than that is torn.
		m := min(int64(len(buf)), end+1-off)
		n, _ := f.ReadAt(buf[:m], off)
		if off+int64(n) > end {
			return false
		}
		b := buf[:n]
		if data := min(int64(n), max(size-off, 0)); data > 0 {
			sum = crc32.Update(sum, castagnoli, b[:data])
			b = b[data:]
		}
		copy(t[max(off-size, 0):], b)
		off += int64(n)
		if int64(n) < m { // the end of the file
			break
		}
	}
	return off == end && binary.BigEndian.Uint32(t[:]) == sum
}

// corrupt is called when block bc of obj (file generation gen, size bytes)
// failed its CRC-32C check through f. It hashes the block against its CID:
// a block that matches (only its trailer went bad) gets its trailer
// written again and may be served (true); else the block is dropped from
// the cache, its file deleted, to be fetched again.
func (c *cache) corrupt(obj chain.ObjectID, bc cid.Cid, f *os.File, gen uint64, size int64) bool {
	b := make([]byte, size)
	if n, _ := f.ReadAt(b, 0); int64(n) == size && chunker.VerifyChunk(bc, b) == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.current(obj, bc, gen) { // else the file is no longer the one indexed
			if err := c.writeTrailer(c.path(obj, bc), b); err != nil {
				c.log.Warn("cache: rewrite a block's checksum", "object", obj, "cid", bc, "err", err)
			}
		}
		return true
	}
	c.drop(obj, bc, gen, func(string) bool { return true })
	c.log.Warn("a cached block failed its check: dropped, it will be fetched again", "object", obj, "cid", bc)
	return false
}

// current reports whether generation gen of block bc of obj is the one
// the cache holds (under mu).
func (c *cache) current(obj chain.ObjectID, bc cid.Cid, gen uint64) bool {
	o := c.objects[obj]
	if o == nil {
		return false
	}
	b, ok := o.blocks[bc]
	return ok && b.gen == gen
}
