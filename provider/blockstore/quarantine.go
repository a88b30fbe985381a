package blockstore

// The quarantine: corrupt blocks set aside, and the list of them.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// quarantine sets a corrupt block aside: its bytes go to quarantine/<cid>
// (a legacy file is moved there; a pack record's bytes are copied and its
// space punched out), its index entry is dropped and it is listed by
// Quarantined until a good copy is Put. It returns the error Get reports.
func (s *Store) quarantine(c cid.Cid, why string) error {
	s.gc.Lock()
	defer s.gc.Unlock()
	if s.closed.Load() {
		// Whatever failed may have been Close's doing: leave the block
		// to be read again after the next Open.
		return fmt.Errorf("blockstore: %s (%s): %w", c, why, ErrClosed)
	}
	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()

	rec, err := s.blockRecord(c)
	if errors.Is(err, ErrNotFound) {
		// Deleted since the failed read: a punched record reads as zeros.
		return fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %s (and reading its index entry failed: %v)", ErrCorrupt, c, why, err)
	}
	// A good copy may have been Put since the failed read.
	if data, err := s.readRecord(c, rec); err == nil && chunker.VerifyChunk(c, data) == nil {
		return fmt.Errorf("%w: %s: read a corrupt copy that was since replaced; read again", ErrCorrupt, c)
	}
	kept := s.setAside(c, rec)
	var b leveldb.Batch
	b.Delete(blockKey(c))
	b.Put(quarantineKey(c), encodeU64(uint64(time.Now().Unix())))
	wasQuarantined, _ := s.db.Has(quarantineKey(c), nil)
	if err := s.writeIndex(&b, true); err != nil {
		return fmt.Errorf("%w: %s: %s (and quarantining it failed: %v)", ErrCorrupt, c, why, err)
	}
	switch {
	case rec.packed && kept:
		_ = s.packs.free(c, rec)
	case rec.packed:
		// No copy set aside (a full disk): the record stays, the only
		// copy of what may be a good block read badly. Open reads the
		// pack again once no record in it is live (scanDeadPacks).
		s.packs.forget(rec.pack)
	}
	s.blocks.Add(-1)
	s.bytes.Add(-int64(rec.size))
	if !wasQuarantined {
		s.quarantined.Add(1)
	}
	s.log.Warn("corrupt block quarantined", "cid", c, "why", why)
	return fmt.Errorf("%w: %s: %s; quarantined, fetch it again from a peer", ErrCorrupt, c, why)
}

// readRecord reads block c's bytes as its index entry rec places them,
// bounded by maxBlockFile.
func (s *Store) readRecord(c cid.Cid, rec blockRecord) ([]byte, error) {
	if !rec.packed {
		return s.files.read(s.legacyPath(c))
	}
	return s.packs.read(rec.pack, rec.off, min(rec.size, maxBlockFile), false)
}

// setAside puts what is on disk of corrupt block c in quarantine/<cid>,
// for an operator to look at, and reports whether it did (or there was
// nothing to set aside).
func (s *Store) setAside(c cid.Cid, rec blockRecord) bool {
	aside := filepath.Join(s.dir, quarantineDir, c.String())
	if !rec.packed {
		if err := os.Rename(s.legacyPath(c), aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot move a corrupt block aside", "cid", c, "err", err)
		}
		return true // the file stays where it was if not moved
	}
	data, err := s.readRecord(c, rec)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err == nil {
		err = os.WriteFile(aside, data, 0o644)
	}
	if err != nil {
		_ = os.Remove(aside) // a partial copy is no copy
		s.log.Warn("cannot copy a corrupt block aside: its record stays in its pack", "cid", c, "err", err)
		return false
	}
	return true
}

// Quarantined lists the blocks set aside as corrupt and not repaired since.
func (s *Store) Quarantined() ([]cid.Cid, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pQuarantine}), nil)
	defer it.Release()
	var out []cid.Cid
	for it.Next() {
		c, err := cid.Cast(bytes.Clone(it.Key()[1:]))
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: quarantined: %w", err)
	}
	return out, nil
}
