package blockstore

// Data objects: recording, reading and deleting their manifests, and the
// blocks an object references.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
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
	blocks := m.Blocks()
	for _, c := range blocks {
		batch.Put(objectRefKey(c, m.Object), nil)
	}
	// The object claims its blocks: the recovery session lets go of them,
	// so they live and die with the object.
	if err := s.releaseRecovered(&batch, blocks); err != nil {
		return fmt.Errorf("blockstore: manifest of object %d: %w", m.Object, err)
	}
	err = s.writeIndex(&batch, true)
	// Even after a failed write: the batch may have reached the index.
	s.refs.written()
	if err != nil {
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

// Blocks lists every block of the object once: its root first, then its
// interior DAG nodes, then its chunks in order.
func (m Manifest) Blocks() []cid.Cid {
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
	add(m.Root)
	for _, n := range m.Nodes {
		add(n)
	}
	for _, c := range m.Chunks {
		add(c.CID)
	}
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
	for _, c := range m.Blocks() {
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
	return s.deleting(func(fl *freeList) error { return s.deleteObject(fl, obj) })
}

// deleteObject is DeleteObject with gc held exclusively.
func (s *Store) deleteObject(fl *freeList, obj uint64) error {
	m, ok, err := s.manifest(obj)
	if err != nil || !ok {
		return err
	}
	blocks := m.Blocks()
	var batch leveldb.Batch
	batch.Delete(manifestKey(obj))
	batch.Delete(bagObjectKey(m.Bag, obj))
	for _, c := range blocks {
		batch.Delete(objectRefKey(c, obj))
	}
	s.sessMu.Lock()
	err = s.releaseRecovered(&batch, blocks)
	if err == nil {
		err = s.writeIndex(&batch, true)
		s.refs.written() // even after a failed write: it may have landed
	}
	s.sessMu.Unlock()
	if err != nil {
		return fmt.Errorf("blockstore: delete object %d: %w", obj, err)
	}
	s.objects.Add(-1)
	return s.collect(fl, blocks)
}
