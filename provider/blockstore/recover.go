package blockstore

// Recovery after an unclean shutdown: reconciling block files with the
// index on Open, and the recovery session that holds the blocks it found
// unclaimed until an object claims them or RecoveredTTL passes.

import (
	"bytes"
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
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// RecoveredTTL is how long blocks found on disk without an index entry after
// a crash (a Put whose index write the crash lost) are kept unless an object
// references them.
const RecoveredTTL = 24 * time.Hour

// The session that holds blocks recovered after a crash.
var recoveredSession = []byte("\x00recovered")

const recoveredBag = "\x00recovered"

// recover empties tmp/ and, after an unclean shutdown of an existing store,
// reconciles block files with the index.
func (s *Store) recover(fresh bool) error {
	tmp := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("blockstore: open: remove stray temp file: %w", err)
		}
	}
	marker := filepath.Join(s.dir, cleanMarker)
	if fresh {
		return nil
	}
	if _, err := os.Stat(marker); err == nil {
		// Closed cleanly: every Put had finished, nothing to reconcile.
		if err := os.Remove(marker); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
		return fsutil.SyncDir(s.dir)
	}
	start := time.Now()
	indexed, recovered, dropped, removed := 0, 0, 0, 0
	var recoveredBytes uint64
	// Files the index does not name.
	err = filepath.WalkDir(filepath.Join(s.dir, blocksDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		c, perr := cid.Decode(d.Name())
		if perr != nil {
			removed++
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
			removed++
			return os.Remove(path)
		}
		indexed++
		var b leveldb.Batch
		b.Put(blockKey(c), encodeBlockRecord(uint64(len(data)), time.Now(), blockCRC(data)))
		// An object that references the block (its manifest is written
		// synchronously, so that reference survived) keeps it and deletes
		// it with itself. Otherwise the session references written with
		// the lost index entry are lost too: keep the block in the
		// recovery session, so it is collected unless an object claims it
		// before the session expires.
		claimed, err := s.hasPrefix(objectRefPrefix(c))
		if err != nil {
			return err
		}
		if !claimed {
			b.Put(sessBlockKey(recoveredSession, c), encodeU64(uint64(len(data))))
			b.Put(sessRefKey(c, recoveredSession), nil)
			recovered++
			recoveredBytes += uint64(len(data))
		}
		return s.db.Write(&b, &opt.WriteOptions{Sync: true})
	})
	if err != nil {
		return fmt.Errorf("blockstore: open: reconcile block files: %w", err)
	}
	if recovered > 0 {
		_, _, prev, err := s.sessionRecord(recoveredSession)
		if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
			return fmt.Errorf("blockstore: open: %w", err)
		}
		rec := encodeSession(recoveredBag, time.Now().Add(RecoveredTTL), prev+recoveredBytes)
		if err := s.db.Put(sessionKey(recoveredSession), rec, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
	}
	// Index entries whose file is missing.
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	var missing [][]byte
	for it.Next() {
		c, err := cid.Cast(it.Key()[1:])
		if err != nil {
			missing = append(missing, bytes.Clone(it.Key()))
			continue
		}
		if _, err := os.Stat(s.blockPath(c)); err != nil {
			missing = append(missing, bytes.Clone(it.Key()))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: reconcile index: %w", err)
	}
	if len(missing) > 0 {
		var b leveldb.Batch
		for _, k := range missing {
			b.Delete(k)
		}
		if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: open: reconcile index: %w", err)
		}
		dropped = len(missing)
	}
	s.log.Info("recovered after an unclean shutdown", "indexed_files", indexed, "unclaimed_files", recovered,
		"removed_files", removed, "dropped_entries", dropped, "took", time.Since(start))
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
