package blockstore

// Hooks on the two writes a power loss can undo, the fdatasync of a pack
// and the synced index write, so tests can fail them or check their order:
// a power loss cannot be caused in a test. And one on the reads of a pack,
// so tests can fail them as a failing disk does (EIO).

import (
	"os"

	"github.com/syndtr/goleveldb/leveldb"
)

// indexWriter writes a batch to the index; write is the real write.
type indexWriter func(write func() error, b *leveldb.Batch) error

// packSyncer syncs a pack file; sync is the real fdatasync.
type packSyncer func(sync func() error, f *os.File) error

// packReader reads a pack file at off; read is the real read (readUpTo).
type packReader func(read func() (int, error), f *os.File, off int64) (int, error)

// withIndexWrite makes every index batch write go through fn, for tests.
func withIndexWrite(fn indexWriter) Option { return func(c *config) { c.indexWrite = fn } }

// withPackSync makes every fdatasync of a pack go through fn, for tests.
func withPackSync(fn packSyncer) Option { return func(c *config) { c.packSync = fn } }

// withPackRead makes every read of a pack go through fn, for tests.
func withPackRead(fn packReader) Option { return func(c *config) { c.packRead = fn } }

// syncPack fdatasyncs pack file f.
func (ps *packSet) syncPack(f *os.File) error {
	if ps.syncHook == nil {
		return fdatasync(f)
	}
	return ps.syncHook(func() error { return fdatasync(f) }, f)
}

// readPack reads a pack file as readUpTo does.
func (ps *packSet) readPack(f *os.File, buf []byte, off int64) (int, error) {
	if ps.readHook == nil {
		return readUpTo(f, buf, off)
	}
	return ps.readHook(func() (int, error) { return readUpTo(f, buf, off) }, f, off)
}
