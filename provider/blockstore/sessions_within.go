package blockstore

// Bringing forward the expiry of upload sessions an object made
// redundant (ExpireSessionsWithin).

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ExpireSessionsWithin brings forward to until the expiry of the upload
// sessions of object obj's bag that match, every block of which obj holds,
// and none of whose blocks was stored here less than idle ago; it returns
// how many it changed. They are uploads that pushed the object's chunks
// here and may never bind them — the uploader lost this node, which then
// synced the object from its peers — so their references would keep the
// object's blocks past its deletion for the sessions' whole lifetime. An
// upload still writing to such a session pushes its expiry out again with
// its next chunk, so only a forsaken one goes at until (ExpireSessions
// removes it).
//
// A session with a block stored less than idle ago is left alone: it may be
// an upload of another object with the same bytes that has pushed its last
// chunk and not bound yet, whose receipts promised its chunks until its
// expiry — brought forward, they would go with obj, and its BIND would
// fail. (A block stored before and only added to the session since does
// not count: the index keeps when a block was stored, not when a session
// last added it.) match is asked once per session and must not keep its
// argument.
func (s *Store) ExpireSessionsWithin(obj uint64, match func(id []byte) bool, idle time.Duration, until time.Time) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	m, ok, err := s.manifest(obj)
	if err != nil || !ok {
		return 0, err
	}
	blocks := m.Blocks()
	candidates, err := s.sessionsOf(blocks, match)
	if err != nil || len(candidates) == 0 {
		return 0, err
	}
	in := make(map[string]bool, len(blocks))
	for _, c := range blocks {
		in[c.KeyString()] = true
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.commits.flush() // the records below are read and written directly
	changed := 0
	for _, id := range candidates {
		bag, expiry, total, err := s.sessionRecord(id)
		if errors.Is(err, leveldb.ErrNotFound) || err == nil && (bag != m.Bag || !expiry.After(until)) {
			continue
		}
		if err != nil {
			return changed, err
		}
		if within, err := s.sessionWithin(id, in, time.Now().Add(-idle)); err != nil || !within {
			if err != nil {
				return changed, err
			}
			continue
		}
		if err := s.db.Put(sessionKey(id), encodeSession(bag, until, total), &opt.WriteOptions{Sync: true}); err != nil {
			return changed, fmt.Errorf("blockstore: session: %w", err)
		}
		changed++
	}
	return changed, nil
}

// sessionsOf returns the IDs of the sessions that match and reference one
// of blocks.
func (s *Store) sessionsOf(blocks []cid.Cid, match func(id []byte) bool) ([][]byte, error) {
	seen := map[string]bool{}
	var out [][]byte
	for _, c := range blocks {
		p := sessRefPrefix(c)
		it := s.db.NewIterator(util.BytesPrefix(p), nil)
		for it.Next() {
			r := &reader{b: it.Key()[len(p):]}
			id := r.bytes()
			if r.err != nil || seen[string(id)] {
				continue
			}
			seen[string(id)] = true
			if match(id) {
				out = append(out, append([]byte(nil), id...))
			}
		}
		it.Release()
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("blockstore: sessions: %w", err)
		}
	}
	return out, nil
}

// sessionWithin reports whether every block of session id is in blocks
// (keyed by CID KeyString) and was stored here before quiet.
func (s *Store) sessionWithin(id []byte, blocks map[string]bool, quiet time.Time) (bool, error) {
	p := sessBlockPrefix(id)
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	defer it.Release()
	for it.Next() {
		k := it.Key()[len(p):]
		if !blocks[string(k)] {
			return false, nil
		}
		c, err := cid.Cast(k)
		if err != nil {
			return false, fmt.Errorf("blockstore: session: %w", err)
		}
		rec, err := s.blockRecord(c)
		if errors.Is(err, ErrNotFound) {
			return false, nil // going: nothing to bring forward
		}
		if err != nil {
			return false, err
		}
		if !rec.storedAt.Before(quiet) {
			return false, nil
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("blockstore: session: %w", err)
	}
	return true, nil
}
