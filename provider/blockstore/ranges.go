package blockstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ipfs/go-cid"
)

// ReadRange reads n bytes of block c from offset off (fewer at the block's
// end) and returns them with the block's size, reading only that range from
// disk. Unlike Get it does not verify the bytes against c: a range cannot be
// checked against a CID that covers the whole block. Callers serve ranges
// only of blocks Get verified recently (see protocol/fetch); the scrub
// re-verifies every block in the background. A block not held gives an error
// wrapping ErrNotFound, and an offset past the end ErrRange. A block
// deleted during the read gives ErrNotFound, never the zeros of its punched
// record; one deleted and put again during the read is read again, once,
// from its new record.
//
// It takes no store lock: a read stuck at a failing disk holds up no
// deletion, and through one waiting for the gc lock, no Put.
func (s *Store) ReadRange(c cid.Cid, off, n uint64) ([]byte, uint64, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return nil, 0, err
	}
	if off > rec.size {
		return nil, rec.size, fmt.Errorf("%w: offset %d is past the end of the %d-byte block %s", ErrRange, off, rec.size, c)
	}
	n = min(n, rec.size-off)
	buf, moved, err := s.readRecordRange(c, rec, off, n)
	if moved != nil {
		// The same CID, so the same bytes and size. Once: a block deleted
		// and put again over and over is as good as not held.
		buf, _, err = s.readRecordRange(c, *moved, off, n)
	}
	if err != nil {
		return nil, 0, err
	}
	return buf, rec.size, nil
}

// readRecordRange reads n bytes at off of block c from the record (or
// legacy file) its index entry rec names. If the block was deleted during
// the read, it fails with an error wrapping ErrNotFound, and returns the
// block's new entry if it was put again meanwhile.
func (s *Store) readRecordRange(c cid.Cid, rec blockRecord, off, n uint64) ([]byte, *blockRecord, error) {
	var buf []byte
	var err error
	if rec.packed {
		buf, err = s.packs.readRange(rec.pack, rec.off, off, n)
	} else {
		buf, err = readFileRange(s.legacyPath(c), off, n)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Its pack unlinked or its file removed: deleted, maybe put again.
		moved, _ := s.sameRecord(c, rec)
		return nil, moved, fmt.Errorf("%w: %s", ErrNotFound, c)
	case err != nil:
		return nil, nil, fmt.Errorf("blockstore: read %s: %w", c, err)
	}
	if rec.packed {
		if moved, err := s.sameRecord(c, rec); err != nil {
			return nil, moved, err
		}
	}
	if uint64(len(buf)) != n {
		// A pack or file shorter than its index entry is damaged: Get
		// finds and quarantines it.
		return nil, nil, fmt.Errorf("%w: %s: read %d of %d bytes at %d", ErrCorrupt, c, len(buf), n, off)
	}
	return buf, nil, nil
}

// sameRecord returns nil if block c's index entry still names the record
// (or legacy file) rec, read from meanwhile, and an error wrapping
// ErrNotFound if not, with the entry that replaced it if any. A deletion
// drops the entry before it punches the record out, and no record is
// written where another was within an Open (packs are appended to, and a
// pack's number is not taken again): an entry unchanged after the read
// proves the bytes read were not punched.
func (s *Store) sameRecord(c cid.Cid, rec blockRecord) (*blockRecord, error) {
	now, err := s.blockRecord(c)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("blockstore: read %s: %w", c, err)
	case now.packed != rec.packed || now.pack != rec.pack || now.off != rec.off:
		return &now, fmt.Errorf("%w: %s (deleted during the read)", ErrNotFound, c)
	}
	return nil, nil
}

// readFileRange reads up to n bytes at off of the file at path.
func readFileRange(path string, off, n uint64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	got, err := readUpTo(f, buf, int64(off))
	if err != nil {
		return nil, err
	}
	return buf[:got], nil
}

// ErrRange means a ranged read started past the end of the block.
var ErrRange = errors.New("blockstore: offset past the end of the block")
