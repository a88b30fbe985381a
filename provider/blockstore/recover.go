package blockstore

// Recovery after an unclean shutdown: reconciling legacy block files with
// the index on Open (packrecover.go does the packs), and the recovery session that holds the blocks it found
// unclaimed until an object claims them or RecoveredTTL passes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/syndtr/goleveldb/leveldb"
)

// RecoveredTTL is how long blocks found on disk without an index entry after
// a crash (a Put whose index write the crash lost) are kept unless an object
// references them: as long as the longest upload session, since the
// session reference that held such a block, receipted, may have been lost
// with its entry (an index damaged without a trace).
const RecoveredTTL = store.MaxSessionTTL

// The session that holds blocks recovered after a crash.
var recoveredSession = []byte("\x00recovered")

const recoveredBag = "\x00recovered"

// cleanStart empties tmp/ (left by stores before packs) and tells whether
// the store must be reconciled with its index: after an unclean shutdown
// of an existing store (no clean marker), or to rebuild a lost or damaged
// index (reindex, then whatever the marker says). The clean marker stays
// until clearClean: Open may yet refuse to open the store, changing nothing.
func (s *Store) cleanStart(fresh, clean, reindex bool) (reconcile bool, err error) {
	tmp := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(tmp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blockstore: open: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return false, fmt.Errorf("blockstore: open: remove stray temp file: %w", err)
		}
	}
	switch {
	case fresh:
		return false, nil
	case reindex:
		s.log.Warn("the index is missing or damaged: re-reading every pack and block file, keeping every block that verifies", "dir", s.dir)
		return true, nil
	}
	return !clean, nil // closed cleanly: every Put had finished
}

// clearClean removes the clean marker, if there: from now on a crash is an
// unclean stop.
func (s *Store) clearClean() error {
	err := os.Remove(filepath.Join(s.dir, cleanMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	return fsutil.SyncDir(s.dir)
}

// recover reconciles the packs nums and the legacy block files with the
// index, after an unclean shutdown of an existing store or to rebuild a
// lost index; w is what the walk of the index found (its stale and lost
// entries already dropped).
//
// keep (the index lost or damaged) keeps what it finds outside the
// recovery session: with the index went the entries, session references
// and manifests that held those blocks, acknowledged, and expiring them
// would delete them before their receipts end.
func (s *Store) recover(w *openWalk, nums []uint32, keep bool) error {
	start := time.Now()
	r, err := s.newRecovery(keep)
	if err != nil {
		return err
	}
	r.dropped = len(w.drop)
	if err := s.recoverFiles(r); err != nil {
		return err
	}
	if err := s.recoverPacks(r, w, nums); err != nil {
		return fmt.Errorf("blockstore: open: reconcile packs: %w", err)
	}
	s.log.Info("recovered after an unclean shutdown", "indexed", r.indexed, "unclaimed", r.recovered,
		"removed", r.removed, "dropped_entries", r.dropped, "packs_scanned", r.scanned, "took", time.Since(start))
	return nil
}

// recovery counts what reconciling found.
type recovery struct {
	indexed, recovered, dropped, removed, scanned int
	// recoveredBytes is the recovery session's byte count, and expiry its
	// new expiry, written with each block it takes.
	recoveredBytes uint64
	expiry         time.Time
	// keep indexes what is found outside the recovery session.
	keep bool
}

// newRecovery starts counting a reconciliation, with the recovery
// session's byte count so far.
func (s *Store) newRecovery(keep bool) (*recovery, error) {
	r := &recovery{keep: keep, expiry: time.Now().Add(RecoveredTTL)}
	_, _, prev, err := s.sessionRecord(recoveredSession)
	if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("blockstore: open: %w", err)
	}
	r.recoveredBytes = prev
	return r, nil
}

// recoverFiles reconciles the legacy block files (blocks/<shard>/<cid>)
// with the index: a file the index does not name is indexed if it verifies
// against its name and removed if not. (A legacy entry whose file is gone
// was dropped by the walk of the index: see entryLost.)
func (s *Store) recoverFiles(r *recovery) error {
	err := filepath.WalkDir(filepath.Join(s.dir, blocksDir), func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == filepath.Join(s.dir, blocksDir) {
			return fs.SkipAll // a store that never had block files
		}
		if err != nil || d.IsDir() {
			return err
		}
		c, perr := cid.Decode(d.Name())
		if perr != nil {
			r.removed++
			return os.Remove(path)
		}
		ok, err := s.db.Has(blockKey(c), nil)
		if err != nil || ok {
			return err
		}
		data, err := s.files.read(path)
		if err != nil && !errors.Is(err, errBlockFileTooLarge) {
			return err
		}
		if err != nil || chunker.VerifyChunk(c, data) != nil {
			r.removed++
			return os.Remove(path)
		}
		rec := blockRecord{size: uint64(len(data)), storedAt: time.Now(), crc: blockCRC(data), hasCRC: true}
		return s.indexRecovered(r, c, rec)
	})
	if err != nil {
		return fmt.Errorf("blockstore: open: reconcile block files: %w", err)
	}
	return nil
}

// dropKeys deletes keys from the index in one synced write.
func (s *Store) dropKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	var b leveldb.Batch
	for _, k := range keys {
		b.Delete(k)
	}
	return s.writeIndex(&b, true)
}

// indexRecovered indexes block c, found whole on disk without an index
// entry, as rec. An object that references the block (its manifest is
// written synchronously, so that reference survived) keeps it and deletes
// it with itself. Otherwise the session references written with the lost
// index entry are lost too: the block goes in the recovery session, so it
// is collected unless an object claims it before the session expires.
func (s *Store) indexRecovered(r *recovery, c cid.Cid, rec blockRecord) error {
	r.indexed++
	var b leveldb.Batch
	b.Put(blockKey(c), rec.encode())
	claimed, err := s.hasPrefix(objectRefPrefix(c))
	if err != nil {
		return err
	}
	if !claimed && !r.keep {
		b.Put(sessBlockKey(recoveredSession, c), encodeU64(rec.size))
		b.Put(sessRefKey(c, recoveredSession), nil)
		r.recovered++
		r.recoveredBytes += rec.size
		// The session's record in the same write: a crash after it must
		// not leave blocks in a session that has no record (and so never
		// expires).
		b.Put(sessionKey(recoveredSession), encodeSession(recoveredBag, r.expiry, r.recoveredBytes))
	}
	if err := s.writeIndex(&b, true); err != nil {
		return err
	}
	// Counted as the walk of the index, before, counted the others.
	s.blocks.Add(1)
	s.bytes.Add(int64(rec.size))
	if rec.packed {
		s.packs.live[rec.pack]++
	}
	return nil
}

// releaseRecovered adds to b the removal of the recovery session's hold on
// those of blocks it holds, and the session's updated byte count. Call it
// holding sessMu, and write b before releasing it.
func (s *Store) releaseRecovered(b *leveldb.Batch, blocks []cid.Cid) error {
	bag, expiry, total, err := s.sessionRecord(recoveredSession)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil // no recovery session, the common case
	}
	if err != nil {
		return err
	}
	released := false
	for _, c := range blocks {
		v, err := s.db.Get(sessBlockKey(recoveredSession, c), nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("recovery session: %w", err)
		}
		if len(v) == 8 {
			total -= min(total, binary.BigEndian.Uint64(v))
		}
		b.Delete(sessBlockKey(recoveredSession, c))
		b.Delete(sessRefKey(c, recoveredSession))
		released = true
	}
	if released {
		b.Put(sessionKey(recoveredSession), encodeSession(bag, expiry, total))
	}
	return nil
}
