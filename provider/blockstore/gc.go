package blockstore

// Garbage collection: deleting blocks, and finding the blocks no object
// and no upload session references any more.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

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
	return s.deleting(func(fl *freeList) error { return s.deleteBlocks(fl, []cid.Cid{c}) })
}

// freeList holds the records whose index entries a deletion dropped, to be
// freed once gc is released.
type freeList struct {
	cids []cid.Cid
	recs []blockRecord
}

// deleting runs fn with gc held exclusively, then frees the records fn
// listed (see deleteBlocks) after releasing it: freeing reads each
// record's header (see packSet.free), and those reads, one per block, must
// not keep every Put waiting, nor a read stuck at a failing disk stall
// them all. Freeing outside gc is safe: the entries are dropped (a
// durable write) before gc is released, so no reader or deleter finds
// them again, and no record is written where another was within an Open
// (packs are appended to, their numbers never taken again), so nothing a
// Put writes meanwhile can lie where a freed record did. The deletion
// returns once its records are freed; Close waits for it.
func (s *Store) deleting(fn func(fl *freeList) error) error {
	var fl freeList
	s.gc.Lock()
	err := fn(&fl)
	if len(fl.cids) > 0 {
		s.frees.Add(1) // under gc, as Close's Wait is
	}
	s.gc.Unlock()
	if len(fl.cids) == 0 {
		return err
	}
	defer s.frees.Done()
	errs := []error{err}
	for i, c := range fl.cids {
		if err := s.free(c, fl.recs[i]); err != nil {
			errs = append(errs, fmt.Errorf("blockstore: delete %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// deleteBlocks drops the index entries of those of cs the store holds in one
// durable write and adds their records to fl, to be freed (a hole punched in
// the pack, or the whole pack unlinked once none of its records is live; a
// legacy file removed) by deleting once gc is released. Call with gc held
// exclusively, which keeps out everything else that writes a block's
// record or index entry (they take gc before a CID's stripe), so no stripe
// is needed. It sorts cs.
//
// One fsync for the lot, not one per block: deleting an object of a few
// hundred chunks is one index write. A crash before it leaves every block
// indexed and whole; a crash between it and the holes leaves records the
// index does not name: in a pack still unsealed, Open recovers them into
// the recovery session and so deletes them after RecoveredTTL; in a sealed
// one they are not looked for, and their space comes back with the pack.
func (s *Store) deleteBlocks(fl *freeList, cs []cid.Cid) error {
	// A CID given twice must be freed once (each free counts a record of
	// its pack dead): sorted, a duplicate is next to its twin. No caller
	// gives one; this is the guard, in index order for the look-ups.
	slices.SortFunc(cs, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	cs = slices.CompactFunc(cs, cid.Cid.Equals)
	var errs []error
	var batch leveldb.Batch
	first := len(fl.cids)
	var freed uint64
	for _, c := range cs {
		rec, err := s.blockRecord(c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		batch.Delete(blockKey(c))
		fl.cids = append(fl.cids, c)
		fl.recs = append(fl.recs, rec)
		freed += rec.size
	}
	dead := len(fl.cids) - first
	if dead == 0 {
		return errors.Join(errs...)
	}
	if err := s.writeIndex(&batch, true); err != nil {
		// Not dropped (or in doubt): nothing to free.
		fl.cids, fl.recs = fl.cids[:first], fl.recs[:first]
		return errors.Join(append(errs, fmt.Errorf("blockstore: delete %d blocks: %w", dead, err))...)
	}
	s.blocks.Add(-int64(dead))
	s.bytes.Add(-int64(freed))
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
// deleteBlocks), adding their records to fl. Call with gc held exclusively.
func (s *Store) collect(fl *freeList, blocks []cid.Cid) error {
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
	return errors.Join(append(errs, s.deleteBlocks(fl, dead))...)
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
