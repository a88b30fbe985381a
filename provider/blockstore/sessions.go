package blockstore

// Upload sessions: blocks held for an upload whose object is not bound
// yet, their records, and their ending and expiry.

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// PutInSession stores block c like Put and records, in the same durable
// index write, that upload session sess holds it: the block is kept at least
// until the session ends (EndSession) or expires (ExpireSessions), and the
// session's byte count grows by its size unless it held c already. A session
// of another bag gives an error wrapping ErrSessionBag.
func (s *Store) PutInSession(sess Session, c cid.Cid, data []byte) error {
	if err := checkPutSize(c, data); err != nil { // before hashing it all
		return err
	}
	if err := chunker.VerifyChunk(c, data); err != nil {
		return fmt.Errorf("blockstore: put: %w", err)
	}
	return s.PutVerifiedInSession(sess, c, data)
}

// PutVerifiedInSession is PutInSession for data its caller has just
// verified against c (a forwarding hop checks a chunk before passing it
// on), so it is not hashed twice.
func (s *Store) PutVerifiedInSession(sess Session, c cid.Cid, data []byte) error {
	if len(sess.ID) == 0 {
		return errors.New("blockstore: empty session ID")
	}
	// Refuse a session of another bag before writing and syncing a record
	// for it (queueSessionRef checks again, under sessMu).
	if err := s.checkSessionBag(sess); err != nil {
		return err
	}
	return s.putVerified(c, data, func(b *leveldb.Batch) error {
		return s.addSessionRef(b, sess, c, uint64(len(data)))
	})
}

// AddToSession records that upload session sess holds block c, which the
// store already holds (an error wrapping ErrNotFound if not), as
// PutInSession does.
func (s *Store) AddToSession(sess Session, c cid.Cid) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(sess.ID) == 0 {
		return errors.New("blockstore: empty session ID")
	}
	if err := s.readyToWrite(true); err != nil {
		return fmt.Errorf("blockstore: session: %w", err)
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	rec, err := s.blockRecord(c)
	if err != nil {
		return err
	}
	var b leveldb.Batch
	return s.addSessionRef(&b, sess, c, rec.size)
}

// addSessionRef adds to b the session's reference to c and its updated
// record, and writes b durably. Call it holding the gc lock shared and c's
// stripe.
func (s *Store) addSessionRef(b *leveldb.Batch, sess Session, c cid.Cid, size uint64) error {
	p, err := s.queueSessionRef(b, sess, c, size)
	if err != nil {
		return err
	}
	// Synced before it returns: the caller acknowledges the block (a
	// receipt, DATA_RECEIVED) next, and recovery could not restore the
	// session reference a lost write would drop. Adds that queued meanwhile
	// share the fsync.
	if err := s.commits.wait(p); err != nil {
		if fsutil.NoSpace(err) {
			s.log.Warn("index write failed for lack of disk space; session adds go on once it has room", "err", err)
		} else {
			s.log.Error("index write failed; session adds stop until the node restarts", "err", err)
		}
		return fmt.Errorf("blockstore: session: %w: %w", errIndexWrite, err)
	}
	b.Reset()
	return nil
}

// errIndexWrite marks a session add whose index write failed: its entries
// may still reach the index (goleveldb journals a batch before syncing it).
var errIndexWrite = errors.New("index write failed")

// checkSessionBag returns an error wrapping ErrSessionBag if session sess
// is open for another bag.
func (s *Store) checkSessionBag(sess Session) error {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	_, _, err := s.sessionOf(sess)
	return err
}

// sessionOf returns the expiry and byte count of session sess's latest
// record (see latestSessionRecord), zeros if it has none, and an error
// wrapping ErrSessionBag if the session is open for another bag. Call it
// under sessMu.
func (s *Store) sessionOf(sess Session) (expiry time.Time, total uint64, err error) {
	bag, expiry, total, err := s.latestSessionRecord(sess.ID)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return time.Time{}, 0, nil
	case err != nil:
		return time.Time{}, 0, err
	case bag != sess.Bag:
		return time.Time{}, 0, fmt.Errorf("%w: session is for bag %s, not %s", ErrSessionBag, bag, sess.Bag)
	}
	return expiry, total, nil
}

// queueSessionRef adds the session's reference to c and its updated record
// to b and queues b for the index. It runs under sessMu so concurrent adds
// to one session do not lose updates of its byte count.
func (s *Store) queueSessionRef(b *leveldb.Batch, sess Session, c cid.Cid, size uint64) (*pendingWrite, error) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	// No add of c to the session is queued: the caller holds c's stripe
	// until its add is written.
	has, err := s.db.Has(sessBlockKey(sess.ID, c), nil)
	if err != nil {
		return nil, fmt.Errorf("blockstore: session: %w", err)
	}
	oldExpiry, total, err := s.sessionOf(sess)
	if err != nil {
		return nil, err
	}
	expiry := sess.Expiry
	if oldExpiry.After(expiry) { // an add never brings the expiry forward
		expiry = oldExpiry
	}
	if !has {
		total += size
		b.Put(sessBlockKey(sess.ID, c), encodeU64(size))
		b.Put(sessRefKey(c, sess.ID), nil)
	}
	b.Put(sessionKey(sess.ID), encodeSession(sess.Bag, expiry, total))
	return s.commits.enqueue(b, sess.ID, sess.Bag, expiry, total), nil
}

// latestSessionRecord is sessionRecord, or the record an add queued for
// the index and not yet written. Call it under sessMu.
func (s *Store) latestSessionRecord(id []byte) (bag string, expiry time.Time, bytes uint64, err error) {
	if bag, expiry, bytes, ok := s.commits.record(id); ok {
		return bag, expiry, bytes, nil
	}
	return s.sessionRecord(id)
}

// sessionRecord reads a session's record; leveldb.ErrNotFound if none.
func (s *Store) sessionRecord(id []byte) (bag string, expiry time.Time, bytes uint64, err error) {
	v, err := s.db.Get(sessionKey(id), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return "", time.Time{}, 0, err
	}
	if err != nil {
		return "", time.Time{}, 0, fmt.Errorf("blockstore: session: %w", err)
	}
	bag, expiry, bytes, err = decodeSession(v)
	if err != nil {
		return "", time.Time{}, 0, fmt.Errorf("blockstore: session: %w", err)
	}
	return bag, expiry, bytes, nil
}

// SessionInfo returns upload session id's bag, expiry and bytes held, and
// false if no such session is open.
func (s *Store) SessionInfo(id []byte) (sess Session, bytes uint64, ok bool, err error) {
	if err := s.checkOpen(); err != nil {
		return Session{}, 0, false, err
	}
	v, err := s.db.Get(sessionKey(id), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return Session{}, 0, false, nil
	}
	if err != nil {
		return Session{}, 0, false, fmt.Errorf("blockstore: session: %w", err)
	}
	bag, expiry, total, err := decodeSession(v)
	if err != nil {
		return Session{}, 0, false, fmt.Errorf("blockstore: session: %w", err)
	}
	return Session{ID: append([]byte(nil), id...), Bag: bag, Expiry: expiry}, total, true, nil
}

// SessionBytes returns the bytes held in upload session id (0 for no such
// session).
func (s *Store) SessionBytes(id []byte) (uint64, error) {
	_, n, _, err := s.SessionInfo(id)
	return n, err
}

// SessionBlocks lists the blocks upload session id holds.
func (s *Store) SessionBlocks(id []byte) ([]cid.Cid, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	p := sessBlockPrefix(id)
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	defer it.Release()
	var out []cid.Cid
	for it.Next() {
		c, err := cid.Cast(append([]byte(nil), it.Key()[len(p):]...))
		if err == nil {
			out = append(out, c)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: session blocks: %w", err)
	}
	return out, nil
}

// EndSession closes upload session id: its references go, and every block
// of it that no object (see PutManifest) and no other session references is
// deleted. Ending a session that is not open does nothing.
func (s *Store) EndSession(id []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.deleting(func(fl *freeList) error { return s.endSession(fl, id) })
}

// endSession is EndSession with gc held exclusively, adding the records of
// the blocks it deletes to fl.
func (s *Store) endSession(fl *freeList, id []byte) error {
	p := sessBlockPrefix(id)
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	var blocks []cid.Cid
	var b leveldb.Batch
	for it.Next() {
		c, err := cid.Cast(append([]byte(nil), it.Key()[len(p):]...))
		b.Delete(append([]byte(nil), it.Key()...))
		if err != nil {
			continue
		}
		blocks = append(blocks, c)
		b.Delete(sessRefKey(c, id))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: end session: %w", err)
	}
	b.Delete(sessionKey(id))
	if err := s.writeIndex(&b, true); err != nil {
		return fmt.Errorf("blockstore: end session: %w", err)
	}
	return s.collect(fl, blocks)
}

// ExpireSessions ends every upload session whose expiry is before now (see
// EndSession) and returns how many it ended. Open runs it periodically
// unless WithSessionExpiry(0) is given.
func (s *Store) ExpireSessions(now time.Time) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var n int
	err := s.deleting(func(fl *freeList) error {
		var err error
		n, err = s.expireSessions(fl, now)
		return err
	})
	return n, err
}

// expireSessions is ExpireSessions with gc held exclusively.
func (s *Store) expireSessions(fl *freeList, now time.Time) (int, error) {
	it := s.db.NewIterator(util.BytesPrefix([]byte{pSession}), nil)
	var expired [][]byte
	bad := 0
	for it.Next() {
		r := &reader{b: it.Key()[1:]}
		id := r.bytes()
		if r.err != nil {
			continue
		}
		_, expiry, _, err := decodeSession(it.Value())
		if err != nil {
			// Its expiry is unknown: collecting it could delete chunks
			// receipted for days yet. Left for an operator.
			bad++
			continue
		}
		if expiry.Before(now) {
			expired = append(expired, append([]byte(nil), id...))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("blockstore: expire sessions: %w", err)
	}
	if prev := s.badSessions.Swap(int64(bad)); int64(bad) != prev && bad > 0 {
		s.log.Error("upload session records that do not decode: kept, with their chunks, until an operator looks", "sessions", bad)
	}
	var errs []error
	for _, id := range expired {
		if err := s.endSession(fl, id); err != nil {
			errs = append(errs, err)
		}
	}
	return len(expired), errors.Join(errs...)
}

// expireLoop expires sessions every interval by the expiry clock (see
// expiryClock), now being the wall clock.
func (s *Store) expireLoop(interval time.Duration, now func() time.Time) {
	defer s.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	clock := s.loadExpiryClock(now())
	last := time.Now() // its monotonic reading counts the time elapsed
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			mono := time.Now()
			wasHeld := clock.held
			clock.advance(now(), mono.Sub(last))
			last = mono
			switch {
			case clock.held && !wasHeld:
				// After a restart, downtime looks the same as a jump: both
				// are caught up with, keeping sessions due meanwhile longer
				// rather than ending receipted ones early.
				s.log.Warn("the wall clock is ahead of the session expiry clock by more than the time elapsed (downtime since the last run, or a clock jump): expiry catches up at twice the time elapsed, so sessions due meanwhile are kept up to as long again",
					"wall", now(), "expiry_clock", clock.at)
			case wasHeld && !clock.held:
				s.log.Info("session expiry caught up with the wall clock", "wall", now())
			}
			s.saveExpiryClock(clock)
			if n, err := s.ExpireSessions(clock.at); err != nil {
				s.log.Warn("expiring upload sessions failed", "err", err)
			} else if n > 0 {
				s.log.Info("expired upload sessions", "sessions", n)
			}
		}
	}
}
