package blockstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// PutManifest records a data object: its bag, its ID, its root and its chunks
// in order. It rebuilds the object's UnixFS DAG from the chunk list
// (chunker.Builder), fails with an error wrapping ErrBadManifest unless the
// rebuilt root is m.Root and the chunk sizes add up to m.Size (a zero m.Size
// is filled in), stores the DAG's interior nodes as blocks, and records that
// the object references its chunks and nodes, so DeleteObject can tell which
// blocks are shared. Every chunk must be held: under the gc lock that
// deletions take, PutManifest checks them before writing anything and fails
// with an error wrapping ErrMissingBlocks if any is not, so a manifest never
// claims a block an expiring session or a deletion has just removed.
// Recording the same manifest again does nothing; a different root for a
// recorded object is refused.
func (s *Store) PutManifest(m Manifest) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if m.Bag == "" || strings.IndexByte(m.Bag, 0) >= 0 {
		return fmt.Errorf("blockstore: manifest of object %d: invalid bag %q", m.Object, m.Bag)
	}
	b := chunker.NewBuilder()
	var size uint64
	for i, c := range m.Chunks {
		if c.Size > chunker.MaxChunkSize {
			return fmt.Errorf("%w: object %d: chunk %d is %d bytes, more than %d", ErrBadManifest, m.Object, i, c.Size, chunker.MaxChunkSize)
		}
		if err := b.Add(c.CID, int(c.Size)); err != nil {
			return fmt.Errorf("%w: object %d: chunk %d: %w", ErrBadManifest, m.Object, i, err)
		}
		size += c.Size
	}
	res, err := b.Finish()
	if err != nil {
		return fmt.Errorf("%w: object %d: %w", ErrBadManifest, m.Object, err)
	}
	if !res.Root.Equals(m.Root) {
		return fmt.Errorf("%w: object %d: chunk list builds %s, not %s", ErrBadManifest, m.Object, res.Root, m.Root)
	}
	if m.Size == 0 {
		m.Size = size
	} else if m.Size != size {
		return fmt.Errorf("%w: object %d: chunks add up to %d bytes, not %d", ErrBadManifest, m.Object, size, m.Size)
	}
	for _, n := range res.Nodes {
		if err := chunker.VerifyChunk(n.CID, n.Data); err != nil {
			return fmt.Errorf("blockstore: manifest of object %d: DAG node: %w", m.Object, err)
		}
	}

	// Held shared from the check of the chunks to the manifest's write, so
	// no deletion (collect, DeleteObject, EndSession, ExpireSessions,
	// quarantine: all take it exclusively) removes a chunk in between.
	s.gc.RLock()
	defer s.gc.RUnlock()
	if err := s.checkHeld(m); err != nil {
		return err
	}
	m.Nodes = m.Nodes[:0]
	for _, n := range res.Nodes {
		if err := s.putLocked(n.CID, n.Data, nil); err != nil {
			return fmt.Errorf("blockstore: manifest of object %d: store DAG node: %w", m.Object, err)
		}
		m.Nodes = append(m.Nodes, n.CID)
	}
	s.sessMu.Lock() // serialises manifest writers too
	defer s.sessMu.Unlock()
	s.commits.flush()
	old, had, err := s.manifest(m.Object)
	if err != nil {
		return err
	}
	if had && !old.Root.Equals(m.Root) {
		return fmt.Errorf("blockstore: object %d is recorded with root %s, not %s; delete it first", m.Object, old.Root, m.Root)
	}
	var batch leveldb.Batch
	batch.Put(manifestKey(m.Object), encodeManifest(m))
	batch.Put(bagObjectKey(m.Bag, m.Object), nil)
	blocks := manifestBlocks(m)
	for _, c := range blocks {
		batch.Put(objectRefKey(c, m.Object), nil)
	}
	// The object claims its blocks: the recovery session lets go of them,
	// so they live and die with the object.
	if err := s.releaseRecovered(&batch, blocks); err != nil {
		return fmt.Errorf("blockstore: manifest of object %d: %w", m.Object, err)
	}
	if err := s.db.Write(&batch, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("blockstore: manifest of object %d: %w", m.Object, err)
	}
	if !had {
		s.objects.Add(1)
	}
	return nil
}

// checkHeld fails with an error wrapping ErrMissingBlocks, naming how many
// and the first few, unless the store holds every chunk of m. Call it with
// gc held.
func (s *Store) checkHeld(m Manifest) error {
	var first []string
	missing := 0
	for _, ref := range m.Chunks {
		held, err := s.db.Has(blockKey(ref.CID), nil)
		if err != nil {
			return fmt.Errorf("blockstore: manifest of object %d: %w", m.Object, err)
		}
		if !held {
			missing++
			if len(first) < 3 {
				first = append(first, ref.CID.String())
			}
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: object %d: %d of %d chunks are not held (first: %v)", ErrMissingBlocks, m.Object, missing, len(m.Chunks), first)
	}
	return nil
}

// manifestBlocks lists every block an object references, once: its chunks,
// its interior nodes and its root.
func manifestBlocks(m Manifest) []cid.Cid {
	seen := make(map[cid.Cid]struct{}, len(m.Chunks)+len(m.Nodes)+1)
	out := make([]cid.Cid, 0, len(m.Chunks)+len(m.Nodes)+1)
	add := func(c cid.Cid) {
		if !c.Defined() {
			return
		}
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	for _, c := range m.Chunks {
		add(c.CID)
	}
	for _, n := range m.Nodes {
		add(n)
	}
	add(m.Root)
	return out
}

// Manifest returns the manifest of object obj, and false if none is recorded.
func (s *Store) Manifest(obj uint64) (Manifest, bool, error) {
	if err := s.checkOpen(); err != nil {
		return Manifest{}, false, err
	}
	return s.manifest(obj)
}

func (s *Store) manifest(obj uint64) (Manifest, bool, error) {
	v, err := s.db.Get(manifestKey(obj), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return Manifest{}, false, nil
	}
	if err != nil {
		return Manifest{}, false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, err)
	}
	m, err := decodeManifest(v)
	if err != nil {
		return Manifest{}, false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, err)
	}
	return m, true, nil
}

// MissingBlocks lists the blocks of object obj (chunks, then interior nodes)
// the store does not hold, for example after a crash, a quarantine, or while
// syncing it. It fails if no manifest of obj is recorded.
func (s *Store) MissingBlocks(obj uint64) ([]cid.Cid, error) {
	m, ok, err := s.Manifest(obj)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("blockstore: object %d has no manifest", obj)
	}
	var missing []cid.Cid
	for _, c := range manifestBlocks(m) {
		ok, err := s.Has(c)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

// Objects lists the objects of a bag that have a manifest, in ascending
// order.
func (s *Store) Objects(bag string) ([]uint64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	it := s.db.NewIterator(util.BytesPrefix(bagPrefix(bag)), nil)
	defer it.Release()
	var out []uint64
	for it.Next() {
		k := it.Key()
		if len(k) < 8 {
			continue
		}
		out = append(out, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: objects of bag %s: %w", bag, err)
	}
	return out, nil
}

// DeleteObject removes object obj's manifest and every block of it that no
// other object and no open upload session references. Blocks the recovery
// session holds (see Open) do not survive it: the deleted object claimed
// them, and a recovered block is not kept for a deleted object. Deleting an
// object without a manifest does nothing.
func (s *Store) DeleteObject(obj uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	m, ok, err := s.manifest(obj)
	if err != nil || !ok {
		return err
	}
	blocks := manifestBlocks(m)
	var batch leveldb.Batch
	batch.Delete(manifestKey(obj))
	batch.Delete(bagObjectKey(m.Bag, obj))
	for _, c := range blocks {
		batch.Delete(objectRefKey(c, obj))
	}
	s.sessMu.Lock()
	err = s.releaseRecovered(&batch, blocks)
	if err == nil {
		err = s.db.Write(&batch, &opt.WriteOptions{Sync: true})
	}
	s.sessMu.Unlock()
	if err != nil {
		return fmt.Errorf("blockstore: delete object %d: %w", obj, err)
	}
	s.objects.Add(-1)
	return s.collect(blocks)
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

// PutInSession stores block c like Put and records, in the same durable
// index write, that upload session sess holds it: the block is kept at least
// until the session ends (EndSession) or expires (ExpireSessions), and the
// session's byte count grows by its size unless it held c already. A session
// of another bag gives an error wrapping ErrSessionBag.
func (s *Store) PutInSession(sess Session, c cid.Cid, data []byte) error {
	if len(sess.ID) == 0 {
		return errors.New("blockstore: empty session ID")
	}
	return s.put(c, data, func(b *leveldb.Batch) error {
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
		s.log.Error("index write failed; session adds stop until the node restarts", "err", err)
		return fmt.Errorf("blockstore: session: %w", err)
	}
	b.Reset()
	return nil
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
	bag, expiry, total := sess.Bag, sess.Expiry, uint64(0)
	oldBag, oldExpiry, oldTotal, err := s.latestSessionRecord(sess.ID)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		bag, total = oldBag, oldTotal
		if bag != sess.Bag {
			return nil, fmt.Errorf("%w: session is for bag %s, not %s", ErrSessionBag, bag, sess.Bag)
		}
		if oldExpiry.After(expiry) {
			expiry = oldExpiry
		}
	}
	if !has {
		total += size
		b.Put(sessBlockKey(sess.ID, c), encodeU64(size))
		b.Put(sessRefKey(c, sess.ID), nil)
	}
	b.Put(sessionKey(sess.ID), encodeSession(bag, expiry, total))
	return s.commits.enqueue(b, sess.ID, bag, expiry, total), nil
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
	s.gc.Lock()
	defer s.gc.Unlock()
	return s.endSession(id)
}

func (s *Store) endSession(id []byte) error {
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
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("blockstore: end session: %w", err)
	}
	return s.collect(blocks)
}

// ExpireSessions ends every upload session whose expiry is before now (see
// EndSession) and returns how many it ended. Open runs it periodically
// unless WithSessionExpiry(0) is given.
func (s *Store) ExpireSessions(now time.Time) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	it := s.db.NewIterator(util.BytesPrefix([]byte{pSession}), nil)
	var expired [][]byte
	for it.Next() {
		r := &reader{b: it.Key()[1:]}
		id := r.bytes()
		if r.err != nil {
			continue
		}
		_, expiry, _, err := decodeSession(it.Value())
		if err != nil || expiry.Before(now) {
			expired = append(expired, append([]byte(nil), id...))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("blockstore: expire sessions: %w", err)
	}
	var errs []error
	for _, id := range expired {
		if err := s.endSession(id); err != nil {
			errs = append(errs, err)
		}
	}
	return len(expired), errors.Join(errs...)
}

// ExpireSessionsWithin brings forward to until the expiry of the upload
// sessions of object obj's bag that match and every block of which obj
// holds, and returns how many it changed. They are uploads that pushed the
// object's chunks here and may never bind them — the uploader lost this
// node, which then synced the object from its peers — so their references
// would keep the object's blocks past its deletion for the sessions' whole
// lifetime. An upload still writing to such a session pushes its expiry out
// again with its next chunk, so only a forsaken one goes at until
// (ExpireSessions removes it). match is asked once per session and must
// not keep its argument.
func (s *Store) ExpireSessionsWithin(obj uint64, match func(id []byte) bool, until time.Time) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	m, ok, err := s.manifest(obj)
	if err != nil || !ok {
		return 0, err
	}
	blocks := manifestBlocks(m)
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
		if within, err := s.sessionWithin(id, in); err != nil || !within {
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
// (keyed by CID KeyString).
func (s *Store) sessionWithin(id []byte, blocks map[string]bool) (bool, error) {
	p := sessBlockPrefix(id)
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	defer it.Release()
	for it.Next() {
		if !blocks[string(it.Key()[len(p):])] {
			return false, nil
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("blockstore: session: %w", err)
	}
	return true, nil
}
