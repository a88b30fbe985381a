package blockstore

// Counting what the store holds: loaded on Open, kept up to date by
// every write and deletion since.

import (
	"bytes"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// loadStats counts blocks, bytes, objects and quarantined blocks, and the
// live records of each pack. An entry that does not fit its pack (see
// entryFits: the pack is missing, the record runs past its end or does not
// start on a record boundary) is dropped (logged): counted, it would keep
// a pack number alive that a new pack could then take, and the entry would
// name another block's bytes. It returns the highest pack number any entry
// named, so no new pack takes it.
func (s *Store) loadStats(sizes map[uint32]int64) (maxNamed uint32, err error) {
	var stale [][]byte
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	for it.Next() {
		rec, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		if rec.packed {
			maxNamed = max(maxNamed, rec.pack)
			if !entryFits(rec, sizes) {
				stale = append(stale, bytes.Clone(it.Key()))
				continue
			}
			s.packs.live[rec.pack]++
		}
		s.blocks.Add(1)
		s.bytes.Add(int64(rec.size))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("blockstore: open: count blocks: %w", err)
	}
	if len(stale) > 0 {
		s.log.Warn("index entries name a pack missing or too short, or a misaligned record: dropped", "entries", len(stale))
		if err := s.dropKeys(stale); err != nil {
			return 0, fmt.Errorf("blockstore: open: drop stale entries: %w", err)
		}
	}
	n, err := s.countPrefix([]byte{pManifest})
	if err != nil {
		return 0, err
	}
	s.objects.Store(int64(n))
	n, err = s.countPrefix([]byte{pQuarantine})
	if err != nil {
		return 0, err
	}
	s.quarantined.Store(int64(n))
	return maxNamed, nil
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
