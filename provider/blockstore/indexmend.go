package blockstore

// Mending an index that ran out of space. The headroom (headroom.go) keeps
// the store's own records off the index's space, but something else on the
// file system can take it: goleveldb's journal write then fails with
// ENOSPC, and its journal writer keeps that error, failing every later
// write, deletions included. It is cleared only where goleveldb starts a
// new journal, when it rotates its memdb; CompactRange over a range that
// overlaps the memdb does that, and waits for the old memdb to be written
// out as a table, after which the old journal, the failed write's torn
// tail in it, is deleted. The range is the first key of the last write
// that went through: whatever else has gone, it is in the memdb, and the
// table compaction of one key is small.
//
// Once the disk has the index's reserve free again, the next write (a
// Put, a session add, a deletion) mends the index before it writes. A
// write that failed as the first into a new journal left the memdb empty,
// which no such range overlaps (only compacting the whole index would
// rotate it); the store then fails writes until it is reopened, and says
// so. Open writes a key first (seedIndex), so that is left only for a write
// failing as the first after goleveldb turned a full memdb into a table.

import (
	"bytes"
	"fmt"
	"syscall"
	"time"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// writeIndex writes b to the index, synced if sync, mending it first if a
// write failed for lack of space (mendIndex).
func (s *Store) writeIndex(b *leveldb.Batch, sync bool) error {
	if s.indexFull.Load() {
		if err := s.mendIndex(); err != nil {
			return err
		}
	}
	err := s.writeIndexRaw(b, sync)
	switch {
	case err == nil && b.Len() > 0:
		var k firstKey
		_ = b.Replay(&k) // a batch built in memory always replays
		s.lastKey.Store(&k.k)
	case fsutil.NoSpace(err):
		s.indexFull.Store(true)
	}
	return err
}

// writeIndexRaw writes b to the index, synced if sync, through the test
// hook if set.
func (s *Store) writeIndexRaw(b *leveldb.Batch, sync bool) error {
	write := func() error { return s.db.Write(b, &opt.WriteOptions{Sync: sync}) }
	if s.indexHook == nil {
		return write()
	}
	return s.indexHook(write, b)
}

// mendIndex clears the error an index write that ran out of space left,
// once the file system has the index's reserve free again, and lets the
// grouped session adds that stopped on it go on. It fails, wrapping
// ENOSPC, while the space is not back.
func (s *Store) mendIndex() error {
	s.mendMu.Lock()
	defer s.mendMu.Unlock()
	if s.indexFull.Load() {
		if err := s.reviveIndex(); err != nil {
			return err
		}
		s.indexFull.Store(false)
		s.log.Info("the index takes writes again: it had run out of disk space")
	}
	s.commits.clearNoSpace()
	return nil
}

// readyToWrite mends the index if a write failed for lack of space
// (mendIndex). For a session add (session), whose index write is grouped,
// it also returns the error that stopped the grouped writes, if any.
func (s *Store) readyToWrite(session bool) error {
	if s.indexFull.Load() || (session && fsutil.NoSpace(s.commits.err())) {
		if err := s.mendIndex(); err != nil {
			return err
		}
	}
	if !session {
		return nil
	}
	if err := s.commits.err(); err != nil {
		if fsutil.NoSpace(err) {
			return fmt.Errorf("the index ran out of disk space earlier (%w); try again", err)
		}
		return fmt.Errorf("the index failed a write earlier (%w); restart the node", err)
	}
	return nil
}

// mendRetry spaces the mends tried with the space back that failed: the
// memdb cannot be rotated (see the top of the file), or the disk filled
// again meanwhile.
const mendRetry = 10 * time.Second

// reviveIndex starts the index on a new journal (see the top of the file)
// and checks that it takes a synced write. Call with mendMu held.
func (s *Store) reviveIndex() error {
	if time.Now().Before(s.mendNext) {
		return s.mendErr
	}
	if room, _, err := s.packs.roomSpace(); err == nil && room < IndexReserve {
		return fmt.Errorf("blockstore: the index ran out of disk space (%w): %d bytes free, it waits for %d",
			syscall.ENOSPC, room, IndexReserve)
	}
	if k := s.lastKey.Load(); k != nil {
		if err := s.db.CompactRange(util.Range{Start: *k, Limit: *k}); err != nil {
			return fmt.Errorf("blockstore: the index ran out of disk space, and cannot start a new journal: %w", err)
		}
	}
	var b leveldb.Batch
	b.Delete(syncKey)
	if err := s.writeIndexRaw(&b, true); err != nil {
		s.log.Error("the index ran out of disk space and still fails writes with space back: restart the node", "err", err)
		s.mendNext = time.Now().Add(mendRetry)
		s.mendErr = fmt.Errorf("blockstore: the index ran out of disk space and still fails writes (%w); restart the node", err)
		return s.mendErr
	}
	return nil
}

// seedIndex writes a deletion of syncKey, not synced, for Open: goleveldb
// opens on a new journal with its memdb empty, and the memdb must hold a
// key written (lastKey) for a mend to start a new journal.
func (s *Store) seedIndex() {
	var b leveldb.Batch
	b.Delete(syncKey)
	if err := s.writeIndex(&b, false); err != nil {
		s.log.Warn("cannot write to the index", "err", err)
	}
}

// firstKey keeps the first key a batch replays.
type firstKey struct {
	k    []byte
	done bool
}

func (f *firstKey) Put(k, _ []byte) { f.take(k) }
func (f *firstKey) Delete(k []byte) { f.take(k) }

func (f *firstKey) take(k []byte) {
	if !f.done {
		f.k, f.done = bytes.Clone(k), true
	}
}
