package blockstore

// Lookups a provider answers from the index instead of keeping its own
// copy in memory: which objects reference a block, which bags hold
// objects. Each is a seek or a prefix scan of keys PutManifest writes and
// DeleteObject removes, so they see bound objects only: a block an upload
// session alone holds belongs to no object here.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ObjectsOf lists, in ascending order, the objects whose manifest names
// block c (as root, interior node or chunk). A block only an upload
// session holds has none. It runs on every fetch GET: one seek, with an
// iterator of a pool (see refiters.go).
func (s *Store) ObjectsOf(c cid.Cid) ([]uint64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var buf [1 + maxCIDLen]byte
	p, ok := refPrefix(&buf, c)
	if !ok {
		return nil, nil
	}
	r := s.refs.get()
	defer s.refs.put(r)
	var out []uint64
	for ok := r.it.Seek(p); ok && bytes.HasPrefix(r.it.Key(), p); ok = r.it.Next() {
		// CIDs are self-delimiting: every key under p is p and an object.
		if k := r.it.Key(); len(k) == len(p)+8 {
			out = append(out, binary.BigEndian.Uint64(k[len(p):]))
		}
	}
	if err := r.it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: objects of block %s: %w", c, err)
	}
	return out, nil
}

// HasObjectWithBlock reports whether any object's manifest names block c:
// ObjectsOf without listing them, one seek.
func (s *Store) HasObjectWithBlock(c cid.Cid) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	var buf [1 + maxCIDLen]byte
	p, ok := refPrefix(&buf, c)
	if !ok {
		return false, nil
	}
	r := s.refs.get()
	defer s.refs.put(r)
	found := r.it.Seek(p) && bytes.HasPrefix(r.it.Key(), p)
	if err := r.it.Error(); err != nil {
		return false, fmt.Errorf("blockstore: objects of block %s: %w", c, err)
	}
	return found, nil
}

// refPrefix is objectRefPrefix(c) in buf, without allocating; false for a
// CID longer than any block's (Put refuses them), which no object names.
func refPrefix(buf *[1 + maxCIDLen]byte, c cid.Cid) ([]byte, bool) {
	k := c.KeyString()
	if len(k) > maxCIDLen {
		return nil, false
	}
	buf[0] = pObjectRef
	return buf[:1+copy(buf[1:], k)], true
}

// HasObject reports whether a manifest of object obj is recorded, without
// reading it.
func (s *Store) HasObject(obj uint64) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	ok, err := s.db.Has(manifestKey(obj), nil)
	if err != nil {
		return false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, err)
	}
	return ok, nil
}

// ObjectBag returns the bag of object obj, and false if no manifest of it
// is recorded. It decodes the manifest's bag alone, not its chunk list.
func (s *Store) ObjectBag(obj uint64) (string, bool, error) {
	if err := s.checkOpen(); err != nil {
		return "", false, err
	}
	v, err := s.db.Get(manifestKey(obj), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, err)
	}
	r, err := manifestReader(v)
	if err != nil {
		return "", false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, err)
	}
	bag := string(r.bytes())
	if r.err != nil {
		return "", false, fmt.Errorf("blockstore: manifest of object %d: %w", obj, r.err)
	}
	return bag, true, nil
}

// Bags lists, in ascending order, the bags that hold at least one object
// with a manifest. It seeks once per bag, whatever the bag's size.
func (s *Store) Bags() ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBagObject}), nil)
	defer it.Release()
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		// o<bag>\x00<obj u64>; a bag name holds no zero byte (PutManifest).
		if len(k) < 1+1+8 || k[len(k)-9] != 0 {
			ok = it.Next()
			continue
		}
		bag := string(k[1 : len(k)-9])
		out = append(out, bag)
		// The first key after every o<bag>\x00… key.
		next := append([]byte{pBagObject}, bag...)
		ok = it.Seek(append(next, 1))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: list bags: %w", err)
	}
	return out, nil
}

// HasObjects reports whether bag holds at least one object with a
// manifest: Objects without listing them, one seek.
func (s *Store) HasObjects(bag string) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	found, err := s.hasPrefix(bagPrefix(bag))
	if err != nil {
		return false, fmt.Errorf("blockstore: objects of bag %s: %w", bag, err)
	}
	return found, nil
}

// CountObjects counts the objects of bag that have a manifest, without
// listing them.
func (s *Store) CountObjects(bag string) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	n, err := s.countPrefix(bagPrefix(bag))
	if err != nil {
		return 0, fmt.Errorf("blockstore: objects of bag %s: %w", bag, err)
	}
	return n, nil
}
