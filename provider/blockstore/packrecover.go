package blockstore

// Reconciling the packs with the index on Open: after an unclean shutdown,
// the packs not sealed are scanned for records the index lacks (a Put that
// synced its record but died before its index write) and for torn ones;
// on every Open, packs with no live record are unlinked and the others
// sealed, since writing resumes in a new pack.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// recoverPacks scans every pack of nums not sealed, and every sealed pack
// the walk of the index found damaged (see scanPack), with the extents of
// their indexed records the walk took.
func (s *Store) recoverPacks(r *recovery, w *openWalk, nums []uint32) error {
	for _, n := range nums {
		if !w.scanned(n) {
			continue
		}
		ext := w.extents[n]
		slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.off, b.off) })
		if err := s.scanPack(r, n, w.sizes[n], ext); err != nil {
			return fmt.Errorf("%s: %w", packName(n), err)
		}
		r.scanned++
	}
	return nil
}

// entryFits reports whether the packed index entry rec names a record that
// lies whole in its pack, by the sizes of the packs on disk: the pack is
// there, the record starts on a record boundary (every record is a
// multiple of ioAlign long and the first starts at 0: reserve and the
// recovery scan place none elsewhere) and ends within the pack. Open drops
// an entry that does not fit: read, it would serve another record's bytes,
// and freed, punch them.
func entryFits(rec blockRecord, sizes map[uint32]int64) bool {
	size, ok := sizes[rec.pack]
	switch {
	case !ok || rec.off < 0 || rec.off%ioAlign != 0 || rec.off > size:
		return false
	case rec.size > uint64(size): // also keeps recordLen from overflowing
		return false
	}
	return rec.off+recordLen(rec.size) <= size
}

// scanPack walks pack n, skipping the records the index names (ext, in
// order; and any other whose CID's entry names it, see recoverRecord) and
// reading the headers of the space between them: a record that is whole
// and verifies against its CID is indexed (or punched, if the CID is
// indexed elsewhere: a Put that lost a race); anything else is garbage,
// punched out, or cut off when it runs to the pack's end (a torn tail).
func (s *Store) scanPack(r *recovery, n uint32, size int64, ext []extent) error {
	p, err := s.packs.acquire(n)
	if err != nil {
		return err
	}
	defer s.packs.release(p)
	// A record found here may be in the page cache only (the process died
	// between its write and the pack's sync): make the pack durable before
	// indexing any of it, or a power loss could leave entries naming zeros.
	if err := s.packs.syncPack(p.f); err != nil {
		return err
	}
	junk := int64(-1) // start of the run of garbage being walked
	flush := func(to int64) {
		if junk >= 0 {
			s.packs.punch(p, junk, to-junk)
			r.removed++
			junk = -1
		}
	}
	for off := int64(0); off < size; {
		if len(ext) > 0 && ext[0].off <= off {
			flush(off)
			off = max(off, ext[0].end)
			ext = ext[1:]
			continue
		}
		limit := size
		if len(ext) > 0 {
			limit = ext[0].off
		}
		next, whole, err := s.recoverRecord(r, p, off, limit)
		if err != nil {
			return err
		}
		if whole {
			flush(off)
		} else if junk < 0 {
			junk = off
		}
		off = next
	}
	if junk >= 0 {
		// Garbage to the end: a torn tail, cut off.
		if err := p.f.Truncate(junk); err != nil {
			return err
		}
		r.removed++
	}
	return s.packs.syncPack(p.f)
}

// recoverRecord looks at the space at off of pack p, up to limit (the next
// indexed record or the pack's end), and returns where the next record may
// start and whether a whole record was there. A record whose CID's entry
// names it is indexed, and skipped unread: the extents of a damaged pack
// lack those the walk of the index met before it found the pack damaged.
func (s *Store) recoverRecord(r *recovery, p *pack, off, limit int64) (next int64, whole bool, err error) {
	h, err := s.packs.readHeader(p, off)
	switch {
	case errors.Is(err, errBadHeader): // garbage, or the pack ends in a torn header
		return off + hdrSize, false, nil
	case err != nil:
		// EIO and the like say nothing of the record: punching or
		// cutting it off could destroy a good block.
		return 0, false, err
	case checkBlockSize(h.size, "record header") != nil || off+recordLen(h.size) > limit:
		return off + hdrSize, false, nil
	}
	next = off + recordLen(h.size)
	entry, err := s.db.Get(blockKey(h.c), nil)
	held := err == nil
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
	case err != nil:
		return 0, false, err
	default:
		if rec, err := decodeBlockRecord(entry); err == nil && rec.packed && rec.pack == p.n && rec.off == off {
			return max(next, off+recordLen(rec.size)), true, nil // the indexed record
		}
	}
	data, err := s.packs.read(p.n, off, h.size, false)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, false, err
	}
	if uint64(len(data)) != h.size || blockCRC(data) != h.crc || chunker.VerifyChunk(h.c, data) != nil {
		return next, false, nil // torn: the header made it, the data did not
	}
	if held { // an orphan of a Put that lost a race
		s.packs.punch(p, off, next-off)
		r.removed++
		return next, true, nil
	}
	rec := blockRecord{size: h.size, storedAt: time.Now(), crc: h.crc, hasCRC: true, packed: true, pack: p.n, off: off}
	return next, true, s.indexRecovered(r, h.c, rec)
}

// sealedPacks returns the packs the index marks sealed.
func (s *Store) sealedPacks() (map[uint32]bool, error) {
	out := map[uint32]bool{}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pPack}), nil)
	defer it.Release()
	for it.Next() {
		if k := it.Key(); len(k) == 5 {
			out[binary.BigEndian.Uint32(k[1:])] = true
		}
	}
	return out, it.Error()
}

// settlePacks, on Open once the index is reconciled and the live records
// counted, unlinks the packs nums (on disk) with none live, seals the
// others (writing resumes in a new pack) and forgets the seals of packs
// gone (sealed: the seals as Open found them). The next pack number is
// past every pack, seal and number an entry named (maxNamed), so no stale
// seal covers a new pack and no stale entry names a record in one.
func (s *Store) settlePacks(nums []uint32, sealed map[uint32]bool, maxNamed uint32) error {
	var b leveldb.Batch
	onDisk := map[uint32]bool{}
	last := maxNamed
	for _, n := range nums {
		onDisk[n] = true
		last = max(last, n)
	}
	for n := range sealed {
		last = max(last, n)
		if !onDisk[n] {
			b.Delete(packKey(n))
		}
	}
	removed := false
	for _, n := range nums {
		switch {
		case s.packs.live[n] == 0:
			if err := s.packs.remove(n); err != nil {
				return fmt.Errorf("blockstore: open: %w", err)
			}
			b.Delete(packKey(n))
			removed = true
		case !sealed[n]:
			b.Put(packKey(n), nil)
		}
	}
	s.packs.next = last + 1
	if b.Len() > 0 {
		if err := s.writeIndex(&b, true); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
	}
	if removed {
		return fsutil.SyncDir(s.packs.dir)
	}
	return nil
}

// seal marks pack n sealed: every write to it has finished. Not synced,
// and no later write is sure to make it durable (a synced write syncs the
// journal it goes to, and goleveldb closes a journal it switches from
// without an fsync): a seal lost to a power loss costs one scan of the
// pack on the next Open, and settlePacks seals it again. A seal that failed
// to write is written again by Close (sealRest).
func (s *Store) seal(n uint32) {
	var b leveldb.Batch
	b.Put(packKey(n), nil)
	if err := s.writeIndex(&b, false); err != nil {
		s.log.Warn("cannot mark a pack sealed; recovery will scan it", "pack", packName(n), "err", err)
	}
}

// sealRest adds to b, for Close once every write has finished, the seals
// of the packs on disk that are not sealed yet: the one being written, and
// any whose seal failed to write. The packs rotated out were sealed when
// their last write finished, and Open sealed those there were. A pack that
// took a record whose index write failed stays unsealed (see
// commitInDoubt), for the next Open to scan; sealRest reports whether
// there is one.
func (s *Store) sealRest(b *leveldb.Batch) (inDoubt bool) {
	sealed, err := s.sealedPacks()
	if err != nil {
		sealed = nil // seal them all
	}
	doubted := s.packs.doubted()
	for _, n := range s.packs.numbers() {
		if !sealed[n] && !doubted[n] {
			b.Put(packKey(n), nil)
		}
	}
	return len(doubted) > 0
}

// scanDeadPacks reads, before settlePacks unlinks them, the packs on disk
// in which the index names no live record and that recovery did not scan:
// an index that forgot its entries (damaged without a trace) must not cost
// the blocks. A record that verifies is indexed, kept (keep) or, after an
// unclean stop, put in the recovery session: a crash between a deletion's
// index write and its pack's unlink leaves whole records no one wants.
// Once a freed record was left unpunched (unpunchedMarker) a dead pack may
// hold deleted blocks, which must stay deleted: the packs are then read
// only when the index is known damaged (reindex), else unlinked unread.
func (s *Store) scanDeadPacks(w *openWalk, nums []uint32, keep, reindex bool) error {
	if !reindex {
		if _, err := os.Stat(filepath.Join(s.packs.dir, unpunchedMarker)); err == nil {
			return nil
		}
	}
	var r *recovery
	for _, n := range nums {
		if s.packs.live[n] > 0 || w.sizes[n] == 0 || (w.reconcile && w.scanned(n)) {
			continue
		}
		if r == nil {
			var err error
			if r, err = s.newRecovery(keep); err != nil {
				return err
			}
		}
		if err := s.scanPack(r, n, w.sizes[n], nil); err != nil {
			return fmt.Errorf("blockstore: open: read %s, which the index names nothing in: %w", packName(n), err)
		}
		r.scanned++
	}
	if r != nil && r.indexed > 0 {
		s.log.Warn("packs the index named nothing in held blocks: indexed again", "indexed", r.indexed,
			"unclaimed", r.recovered, "kept", keep, "packs_scanned", r.scanned)
	}
	return nil
}
