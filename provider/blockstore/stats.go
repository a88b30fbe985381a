package blockstore

// Counting what the store holds: loaded on Open, kept up to date by
// every write and deletion since.

import (
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// countObjects counts the objects and the quarantined blocks (Open; the
// blocks and bytes are counted by walkBlocks).
func (s *Store) countObjects() error {
	n, err := s.countPrefix([]byte{pManifest})
	if err != nil {
		return err
	}
	s.objects.Store(int64(n))
	n, err = s.countPrefix([]byte{pQuarantine})
	if err != nil {
		return err
	}
	s.quarantined.Store(int64(n))
	return nil
}

func (s *Store) countPrefix(p []byte) (int, error) {
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("blockstore: %w", err)
	}
	return n, nil
}

// Stats counts what the store holds.
func (s *Store) Stats() Stats {
	return Stats{
		Blocks:      uint64(max(s.blocks.Load(), 0)),
		Bytes:       uint64(max(s.bytes.Load(), 0)),
		Objects:     uint64(max(s.objects.Load(), 0)),
		Quarantined: uint64(max(s.quarantined.Load(), 0)),
		BadSessions: uint64(max(s.badSessions.Load(), 0)),
	}
}
