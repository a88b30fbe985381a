package blockstore

// Hooks on the two writes a power loss can undo, the fdatasync of a pack
// and the synced index write, so tests can fail them or check their order:
// a power loss cannot be caused in a test.

import (
	"os"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// indexWriter writes a batch to the index; write is the real write.
type indexWriter func(write func() error, b *leveldb.Batch) error

// packSyncer syncs a pack file; sync is the real fdatasync.
type packSyncer func(sync func() error, f *os.File) error

// withIndexWrite makes every index batch write go through fn, for tests.
func withIndexWrite(fn indexWriter) Option { return func(c *config) { c.indexWrite = fn } }

// withPackSync makes every fdatasync of a pack go through fn, for tests.
func withPackSync(fn packSyncer) Option { return func(c *config) { c.packSync = fn } }

// writeIndex writes b to the index, synced if sync.
func (s *Store) writeIndex(b *leveldb.Batch, sync bool) error {
	if s.indexHook == nil {
		return s.db.Write(b, &opt.WriteOptions{Sync: sync})
	}
	return s.indexHook(func() error { return s.db.Write(b, &opt.WriteOptions{Sync: sync}) }, b)
}

// syncPack fdatasyncs pack file f.
func (ps *packSet) syncPack(f *os.File) error {
	if ps.syncHook == nil {
		return fdatasync(f)
	}
	return ps.syncHook(func() error { return fdatasync(f) }, f)
}
