package blockstore

// Open's one walk of the block index: what every part of Open needs from
// it (counts, live records per pack, entries to drop, the extents of the
// packs recovery scans) is taken in the same pass. A store of millions of
// blocks holds millions of entries; walking them is most of a clean Open.

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// extent is the space of one indexed record in a pack.
type extent struct{ off, end int64 }

// openWalk is what Open gives its walk of the block index and learns from
// it.
type openWalk struct {
	// reconcile is set after an unclean stop: the walk also finds the
	// entries whose legacy file is gone, and the extents of the packs
	// recovery scans.
	reconcile bool
	// sizes are the sizes of the packs on disk.
	sizes map[uint32]int64
	// sealed are the packs the index marks sealed.
	sealed map[uint32]bool
	// all is set when the index is known damaged or lost: recovery scans
	// every pack, and the walk takes the extents of all.
	all bool

	// damaged are the sealed packs an entry of which does not fit them,
	// when reconciling: scanned like the unsealed ones.
	damaged map[uint32]bool

	// extents of the indexed records of the packs to scan, when
	// reconciling. Only theirs: a store of 20 TB in 1 MiB blocks would
	// hold hundreds of MB of them for every pack. A damaged pack's are
	// collected by a second walk (damagedExtents): the first met some of
	// its entries before it knew the pack damaged.
	extents map[uint32][]extent
	// drop are the keys of the entries to drop: stale ones (see
	// entryFits) and, when reconciling, lost ones (undecodable, or a
	// legacy file gone).
	drop  [][]byte
	stale int
	// missing counts, per pack, the entries naming a pack not on disk.
	missing map[uint32]int
	// maxNamed is the highest pack number an entry names.
	maxNamed uint32
}

// walkBlocks walks the block index once, counting the blocks and bytes
// held and each pack's live records, and filling in w. An entry that does
// not fit its pack (entryFits: the pack is missing, the record runs past
// its end or does not start on a record boundary) is dropped: counted, it
// would keep a pack number alive that a new pack could then take, and the
// entry would name another block's bytes.
func (s *Store) walkBlocks(w *openWalk) error {
	s.indexWalks++
	w.extents, w.damaged, w.missing = map[uint32][]extent{}, map[uint32]bool{}, map[uint32]int{}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	defer it.Release()
	for it.Next() {
		rec, err := decodeBlockRecord(it.Value())
		switch {
		case w.reconcile && s.entryLost(it.Key(), rec, err):
			w.drop = append(w.drop, bytes.Clone(it.Key()))
			continue
		case err != nil:
			continue // not counted, left for a reconciling Open
		case rec.packed:
			w.maxNamed = max(w.maxNamed, rec.pack)
			if _, ok := w.sizes[rec.pack]; !ok {
				w.missing[rec.pack]++
			}
			if !entryFits(rec, w.sizes) {
				w.drop = append(w.drop, bytes.Clone(it.Key()))
				w.stale++
				if w.reconcile && w.sealed[rec.pack] {
					w.damaged[rec.pack] = true // look at the rest of it
				}
				continue
			}
			s.packs.live[rec.pack]++
			if w.reconcile && w.scanned(rec.pack) {
				w.extents[rec.pack] = append(w.extents[rec.pack], extent{rec.off, rec.off + recordLen(rec.size)})
			}
		}
		s.blocks.Add(1)
		s.bytes.Add(int64(rec.size))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: walk the index: %w", err)
	}
	return nil
}

// damagedExtents walks the block index again for the extents of every
// record of the sealed packs the first walk found damaged, which it kept
// only for the entries it met after finding each damaged. The scan must
// know every indexed record's extent: one whose header rotted still serves
// its block (a read needs only the entry), and without its extent the scan
// would take it for junk and punch it. Rare: a sealed pack is found
// damaged only after an unclean stop left an entry that does not fit it.
func (s *Store) damagedExtents(w *openWalk) error {
	if len(w.damaged) == 0 || w.all {
		return nil // with all, the first walk took every extent
	}
	s.indexWalks++
	for n := range w.damaged {
		w.extents[n] = nil
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	defer it.Release()
	for it.Next() {
		rec, err := decodeBlockRecord(it.Value())
		if err != nil || !rec.packed || !w.damaged[rec.pack] || !entryFits(rec, w.sizes) {
			continue
		}
		w.extents[rec.pack] = append(w.extents[rec.pack], extent{rec.off, rec.off + recordLen(rec.size)})
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: walk the index for damaged packs: %w", err)
	}
	return nil
}

// scanned reports whether recovery scans pack n: it is not sealed, or
// damaged, or the index is (all).
func (w *openWalk) scanned(n uint32) bool { return w.all || !w.sealed[n] || w.damaged[n] }

// entryLost reports whether the block index entry under key, decoded as
// rec (or failing with decodeErr), is to be dropped after an unclean stop:
// it does not decode, its key names no CID, or its legacy file is gone.
func (s *Store) entryLost(key []byte, rec blockRecord, decodeErr error) bool {
	if decodeErr != nil {
		return true
	}
	c, err := cid.Cast(key[1:])
	if err != nil {
		return true
	}
	if rec.packed {
		return false
	}
	_, err = os.Stat(s.legacyPath(c))
	return err != nil
}

// dropEntries drops the entries the walk found stale or lost, in one
// synced write.
func (s *Store) dropEntries(w *openWalk) error {
	if len(w.missing) > 0 {
		// packs/ is this store's (checkIdentity): these packs are lost.
		s.log.Error("index entries name packs that are gone from this store's packs/: their blocks are lost", "detail", missingText(w.missing))
	}
	if w.stale > 0 {
		s.log.Warn("index entries name a pack missing or too short, or a misaligned record: dropped", "entries", w.stale)
	}
	if err := s.dropKeys(w.drop); err != nil {
		return fmt.Errorf("blockstore: open: drop stale entries: %w", err)
	}
	return nil
}
