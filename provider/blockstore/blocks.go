package blockstore

// Block I/O: Has, Size, StoredAt, Get, Put and AllBlocks, each block's
// record and index entry serialised by its lock stripe.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

func (s *Store) stripe(c cid.Cid) *sync.Mutex {
	return &s.stripes[maphash.Bytes(s.seed, c.Bytes())%lockStripes]
}

// Has reports whether the store holds block c (indexed, not quarantined).
func (s *Store) Has(c cid.Cid) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	ok, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return false, fmt.Errorf("blockstore: has %s: %w", c, err)
	}
	return ok, nil
}

// Size returns the size of block c, or an error wrapping ErrNotFound.
func (s *Store) Size(c cid.Cid) (uint64, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return 0, err
	}
	return rec.size, nil
}

// StoredAt returns when block c was first stored, or an error wrapping
// ErrNotFound.
func (s *Store) StoredAt(c cid.Cid) (time.Time, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return time.Time{}, err
	}
	return rec.storedAt, nil
}

func (s *Store) blockRecord(c cid.Cid) (blockRecord, error) {
	if err := s.checkOpen(); err != nil {
		return blockRecord{}, err
	}
	v, err := s.db.Get(blockKey(c), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return blockRecord{}, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return blockRecord{}, fmt.Errorf("blockstore: %s: %w", c, err)
	}
	rec, err := decodeBlockRecord(v)
	if err != nil {
		return blockRecord{}, fmt.Errorf("blockstore: %s: %w", c, err)
	}
	return rec, nil
}

// Get returns block c. It verifies the bytes against c (the full hash) on
// every read: a block that no longer matches is quarantined (moved aside, no
// longer held) and Get returns an error wrapping ErrCorrupt. A block not
// held gives an error wrapping ErrNotFound. The scrub and audits read
// through Get; serving a receiver that verifies the CID itself reads
// through GetFast.
func (s *Store) Get(c cid.Cid) ([]byte, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return nil, err
	}
	data, err := s.readHeld(c, rec, false)
	if err != nil {
		return nil, err
	}
	if verr := chunker.VerifyChunk(c, data); verr != nil {
		return nil, s.quarantine(c, verr.Error())
	}
	return data, nil
}

// readHeld reads the bytes of block c, which the index holds as rec, from
// its pack record or legacy file; pooled reads into a buffer of the pool.
// A block too large, or whose pack or file is missing while still indexed,
// is quarantined.
func (s *Store) readHeld(c cid.Cid, rec blockRecord, pooled bool) ([]byte, error) {
	var data []byte
	var err error
	switch {
	case rec.packed:
		data, err = s.packs.read(rec.pack, rec.off, rec.size, pooled)
	case pooled:
		data, err = s.files.readPooled(s.legacyPath(c))
	default:
		data, err = s.files.read(s.legacyPath(c))
	}
	if err != nil && s.closed.Load() {
		// Close closed the pack or the index under the read: nothing
		// is known about the block, and nothing must be quarantined.
		return nil, fmt.Errorf("blockstore: get %s: %w", c, ErrClosed)
	}
	if errors.Is(err, errBlockFileTooLarge) {
		return nil, s.quarantine(c, err.Error())
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted between the index lookup and the read, or lost: either
		// way not held.
		if ok, _ := s.db.Has(blockKey(c), nil); !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
		}
		return nil, s.quarantine(c, "pack or file missing")
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	return data, nil
}

// Put stores block c durably. It first refuses a block of more than 64 MiB,
// which no read would take back (an error wrapping ErrBlockTooLarge), then
// checks that data hashes to c (an error wrapping ErrCIDMismatch if not);
// either way nothing is stored. When Put returns nil
// the bytes are in a pack, fdatasynced, and indexed by a synced write.
// Putting a block already held does nothing; putting a quarantined block's
// good bytes repairs it.
func (s *Store) Put(c cid.Cid, data []byte) error {
	return s.put(c, data, nil)
}

// put stores a block and, in the same index batch, whatever extra adds (a
// session reference), under the shared gc lock.
func (s *Store) put(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	if err := checkPutSize(c, data); err != nil { // before hashing it all
		return err
	}
	if err := chunker.VerifyChunk(c, data); err != nil {
		return fmt.Errorf("blockstore: put: %w", err)
	}
	return s.putVerified(c, data, extra)
}

// putVerified is put for data its caller verified against c.
func (s *Store) putVerified(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	// Checked under gc: Close sets closed before it takes gc, so a Put
	// that waited for Close sees it.
	s.gc.RLock()
	defer s.gc.RUnlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	// An index that ran out of space is mended first, or no record is
	// written. A session put ends in a grouped index write: after one
	// failed, none is attempted, so do not write a record for it either.
	if err := s.readyToWrite(extra != nil); err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	return s.putLocked(c, data, extra)
}

// putLocked is put for a block already verified against c, with gc held
// shared. The record is written and synced outside c's stripe, so writers
// of different blocks share the pack's fdatasync; the index is checked again
// under the stripe, and a record that lost a race with another Put of c is
// punched out at once.
func (s *Store) putLocked(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	if n := len(c.Bytes()); n > maxCIDLen {
		return fmt.Errorf("blockstore: put: CID of %d bytes, more than %d", n, maxCIDLen)
	}
	if err := checkPutSize(c, data); err != nil {
		return err
	}
	held, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	var crc uint32
	var w *packWrite
	if !held {
		// The expensive part, outside the CID's lock.
		crc = blockCRC(data)
		if w, err = s.packs.write(c, data, crc); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		defer func() { s.packs.finish(w) }()
	}

	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	if held, err = s.db.Has(blockKey(c), nil); err != nil {
		if w != nil {
			s.packs.discard(w)
		}
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	if held && w != nil { // another Put of c won: ours is an orphan
		s.packs.discard(w)
	}
	var b leveldb.Batch
	if !held {
		if w == nil {
			// Held at the first look, and only deletions (gc held
			// exclusively) drop entries: cannot happen.
			return fmt.Errorf("blockstore: put %s: the index dropped the block during the put; put it again", c)
		}
		rec := blockRecord{size: uint64(len(data)), storedAt: time.Now(), crc: crc, hasCRC: true,
			packed: true, pack: w.p.n, off: w.off}
		b.Put(blockKey(c), rec.encode())
		b.Delete(quarantineKey(c))
	}
	return s.indexPut(c, &b, !held, w, len(data), extra)
}

// checkPutSize returns an error wrapping ErrBlockTooLarge if data is more
// than a block may hold: no read would take it back (it would be
// quarantined at once).
func checkPutSize(c cid.Cid, data []byte) error {
	if len(data) > maxBlockFile {
		return fmt.Errorf("%w: put %s of %d bytes", ErrBlockTooLarge, c, len(data))
	}
	return nil
}

// indexPut writes the index batch of a Put (b, and extra's additions) and
// settles its record: counted live once indexed, punched out if a session
// add refused it.
func (s *Store) indexPut(c cid.Cid, b *leveldb.Batch, added bool, w *packWrite, size int, extra func(b *leveldb.Batch) error) error {
	wasQuarantined := false
	if added {
		wasQuarantined, _ = s.db.Has(quarantineKey(c), nil)
	}
	if extra != nil {
		// extra writes the batch, with its own additions, itself.
		if err := extra(b); err != nil {
			switch {
			case added && errors.Is(err, errIndexWrite):
				// goleveldb journals a batch before syncing it: after a
				// failed sync the entry may come back on restart, so
				// the record must stay, counted live like Put's below.
				s.packs.commitInDoubt(w)
			case added:
				// Refused before anything was queued: nothing indexes
				// the record (the stripe keeps others out), so free it
				// rather than leave it for a crash recovery that a
				// clean restart never runs.
				s.packs.discard(w)
			}
			return err
		}
	} else if b.Len() > 0 {
		// Synced, so the block is held when Put returns: Open after a crash
		// would index a record whose entry was lost, but only into the
		// recovery session, which expires.
		if err := s.writeIndex(b, true); err != nil {
			// The entry may have reached the disk all the same: count
			// the record live, so its pack is not unlinked under it,
			// and leave the pack for the next Open to scan.
			s.packs.commitInDoubt(w)
			return fmt.Errorf("blockstore: put %s: index: %w", c, err)
		}
	}
	if added {
		s.packs.commit(w)
		s.blocks.Add(1)
		s.bytes.Add(int64(size))
		if wasQuarantined {
			s.quarantined.Add(-1)
			if err := os.Remove(filepath.Join(s.dir, quarantineDir, c.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot remove the set-aside copy of a repaired block", "cid", c, "err", err)
			}
		}
	}
	return nil
}

// AllBlocks calls fn with every block the store holds and its size, in index
// order, until fn returns an error, which AllBlocks then returns.
func (s *Store) AllBlocks(fn func(c cid.Cid, size uint64) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	defer it.Release()
	for it.Next() {
		c, err := cid.Cast(bytes.Clone(it.Key()[1:]))
		if err != nil {
			continue
		}
		rec, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		if err := fn(c, rec.size); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: list blocks: %w", err)
	}
	return nil
}
