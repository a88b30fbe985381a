package blockstore

// Garbage collection: deleting blocks, and finding the blocks no object
// and no upload session references any more.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Delete removes block c, whatever references it. Deleting a block not held
// does nothing.
func (s *Store) Delete(c cid.Cid) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	return s.deleteBlocks([]cid.Cid{c})
}

// deleteBlocks drops the index entries of those of cs the store holds in one
// durable write, then frees their records (a hole punched in the pack, or
// the whole pack unlinked once none of its records is live) or legacy
// files. Call with gc held exclusively, which
// keeps out everything else that writes a block's record or index entry (they
// take gc before a CID's stripe), so no stripe is needed.
//
// One fsync for the lot, not one per block: deleting an object of a few
// hundred chunks is one index write. A crash before it leaves every block
// indexed and whole; a crash between it and the holes leaves records the
// index does not name: in a pack still unsealed, Open recovers them into
// the recovery session and so deletes them after RecoveredTTL; in a sealed
// one they are not looked for, and their space comes back with the pack.
func (s *Store) deleteBlocks(cs []cid.Cid) error {
	var errs []error
	var batch leveldb.Batch
	dead := make([]cid.Cid, 0, len(cs))
	recs := make([]blockRecord, 0, len(cs))
	var freed uint64
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		// A CID given twice is freed once: each free counts a record of
		// its pack dead.
		if seen[c.KeyString()] {
			continue
		}
		seen[c.KeyString()] = true
		rec, err := s.blockRecord(c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		batch.Delete(blockKey(c))
		dead = append(dead, c)
		recs = append(recs, rec)
		freed += rec.size
	}
	if len(dead) == 0 {
		return errors.Join(errs...)
	}
	if err := s.writeIndex(&batch, true); err != nil {
		return errors.Join(append(errs, fmt.Errorf("blockstore: delete %d blocks: %w", len(dead), err))...)
	}
	s.blocks.Add(-int64(len(dead)))
	s.bytes.Add(-int64(freed))
	for i, c := range dead {
		if err := s.free(c, recs[i]); err != nil {
			errs = append(errs, fmt.Errorf("blockstore: delete %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// free releases the space of block c, whose index entry rec was dropped.
func (s *Store) free(c cid.Cid, rec blockRecord) error {
	if rec.packed {
		return s.packs.free(c, rec)
	}
	if err := os.Remove(s.legacyPath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// collect deletes those of blocks nothing references any more (see
// deleteBlocks). Call with gc held exclusively.
func (s *Store) collect(blocks []cid.Cid) error {
	var errs []error
	dead := make([]cid.Cid, 0, len(blocks))
	for _, c := range blocks {
		ref, err := s.referenced(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ref {
			dead = append(dead, c)
		}
	}
	return errors.Join(append(errs, s.deleteBlocks(dead))...)
}

// referenced reports whether any object or session references block c.
func (s *Store) referenced(c cid.Cid) (bool, error) {
	for _, p := range [][]byte{objectRefPrefix(c), sessRefPrefix(c)} {
		found, err := s.hasPrefix(p)
		if err != nil {
			return false, fmt.Errorf("blockstore: references of %s: %w", c, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// hasPrefix reports whether any index key starts with p.
func (s *Store) hasPrefix(p []byte) (bool, error) {
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	found := it.Next()
	it.Release()
	return found, it.Error()
}
