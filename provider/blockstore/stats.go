package blockstore

// Counting what the store holds: loaded on Open, kept up to date by
// every write and deletion since.

import (
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// loadStats counts blocks, bytes, objects and quarantined blocks.
func (s *Store) loadStats() error {
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	for it.Next() {
		rec, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		s.blocks.Add(1)
		s.bytes.Add(int64(rec.size))
		if rec.packed {
			s.packs.live[rec.pack]++
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: count blocks: %w", err)
	}
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
	}
}
