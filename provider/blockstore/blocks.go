package blockstore

// Block I/O: Has, Size, StoredAt, Get, Put and AllBlocks, each block's
// file and index entry serialised by its lock stripe.

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
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
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

type blockRecord struct {
	size     uint64
	storedAt time.Time
	crc      uint32 // CRC-32C of the bytes, when hasCRC
	hasCRC   bool
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
	size, at, err := decodeBlockRecord(v)
	if err != nil {
		return blockRecord{}, fmt.Errorf("blockstore: %s: %w", c, err)
	}
	crc, ok := decodeBlockCRC(v)
	return blockRecord{size: size, storedAt: at, crc: crc, hasCRC: ok}, nil
}

// Get returns block c. It verifies the bytes against c (the full hash) on
// every read: a block that no longer matches is quarantined (moved aside, no
// longer held) and Get returns an error wrapping ErrCorrupt. A block not
// held gives an error wrapping ErrNotFound. The scrub and audits read
// through Get; serving a receiver that verifies the CID itself reads
// through GetFast.
func (s *Store) Get(c cid.Cid) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ok, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	data, err := s.readHeld(c, s.files.read)
	if err != nil {
		return nil, err
	}
	if verr := chunker.VerifyChunk(c, data); verr != nil {
		return nil, s.quarantine(c, verr.Error())
	}
	return data, nil
}

// readHeld reads the file of block c, which the index holds, with read:
// a file too large or missing while still indexed is quarantined.
func (s *Store) readHeld(c cid.Cid, read func(path string) ([]byte, error)) ([]byte, error) {
	data, err := read(s.blockPath(c))
	if errors.Is(err, errBlockFileTooLarge) {
		return nil, s.quarantine(c, err.Error())
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted between the index lookup and the read, or lost: either
		// way not held.
		if ok, _ := s.db.Has(blockKey(c), nil); !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
		}
		return nil, s.quarantine(c, "file missing")
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	return data, nil
}

// Put stores block c durably. It first checks that data hashes to c (an error
// wrapping ErrCIDMismatch if not, and nothing is stored). When Put returns nil
// the bytes are fsynced in their final place and indexed by a synced write.
// Putting a block already
// held does nothing; putting a quarantined block's good bytes repairs it.
func (s *Store) Put(c cid.Cid, data []byte) error {
	return s.put(c, data, nil)
}

// put stores a block and, in the same index batch, whatever extra adds (a
// session reference), under the shared gc lock.
func (s *Store) put(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	if err := chunker.VerifyChunk(c, data); err != nil {
		return fmt.Errorf("blockstore: put: %w", err)
	}
	return s.putVerified(c, data, extra)
}

// putVerified is put for data its caller verified against c.
func (s *Store) putVerified(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if extra != nil {
		// A session put ends in a grouped index write: after one failed,
		// none is attempted, so do not leave a file for it either.
		if err := s.commits.err(); err != nil {
			return fmt.Errorf("blockstore: put %s: the index failed a write earlier (%v); restart the node", c, err)
		}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	return s.putLocked(c, data, extra)
}

// putLocked is put for a block already verified against c, with gc held
// shared.
func (s *Store) putLocked(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	held, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	var tmp string
	if !held {
		// The expensive part, outside the CID's lock.
		if tmp, err = s.writeTemp(data); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		defer os.Remove(tmp) // no-op once renamed
	}

	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	var b leveldb.Batch
	added := false
	if held, err = s.db.Has(blockKey(c), nil); err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	if !held {
		if tmp == "" { // deleted since the first look
			if tmp, err = s.writeTemp(data); err != nil {
				return fmt.Errorf("blockstore: put %s: %w", c, err)
			}
			defer os.Remove(tmp)
		}
		path := s.blockPath(c)
		if err := s.ensureShard(filepath.Dir(path)); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		b.Put(blockKey(c), encodeBlockRecord(uint64(len(data)), time.Now(), blockCRC(data)))
		b.Delete(quarantineKey(c))
		added = true
	}
	wasQuarantined := false
	if added {
		wasQuarantined, _ = s.db.Has(quarantineKey(c), nil)
	}
	if extra != nil {
		// extra writes the batch, with its own additions, itself.
		if err := extra(&b); err != nil {
			if added {
				// Nothing indexes the file just renamed in (the stripe
				// keeps others out): take it back rather than leave it
				// for a crash recovery that a clean restart never runs.
				_ = os.Remove(s.blockPath(c))
			}
			return err
		}
	} else if b.Len() > 0 {
		// Synced, so the block is held when Put returns: Open after a crash
		// would index a block file whose entry was lost, but only into the
		// recovery session, which expires.
		if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: put %s: index: %w", c, err)
		}
	}
	if added {
		s.blocks.Add(1)
		s.bytes.Add(int64(len(data)))
		if wasQuarantined {
			s.quarantined.Add(-1)
			_ = os.Remove(filepath.Join(s.dir, quarantineDir, c.String()))
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
		size, _, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		if err := fn(c, size); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: list blocks: %w", err)
	}
	return nil
}
