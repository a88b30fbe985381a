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
// record.
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
	var buf []byte
	if rec.packed {
		buf, err = s.packs.readRange(rec.pack, rec.off, off, n)
	} else {
		buf, err = readFileRange(s.legacyPath(c), off, n)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blockstore: read %s: %w", c, err)
	}
	if rec.packed {
		if err := s.sameRecord(c, rec); err != nil {
			return nil, 0, err
		}
	}
	if uint64(len(buf)) != n {
		// A pack or file shorter than its index entry is damaged: Get
		// finds and quarantines it.
		return nil, 0, fmt.Errorf("%w: %s: read %d of %d bytes at %d", ErrCorrupt, c, len(buf), n, off)
	}
	return buf, rec.size, nil
}

// sameRecord returns nil if block c's index entry still names the record
// rec, read from meanwhile, and an error wrapping ErrNotFound if not. A
// deletion drops the entry before it punches the record out, and no
// record is written where another was within an Open (packs are appended
// to, and a pack's number is not taken again): an entry unchanged after
// the read proves the bytes read were not punched.
func (s *Store) sameRecord(c cid.Cid, rec blockRecord) error {
	now, err := s.blockRecord(c)
	switch {
	case errors.Is(err, ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("blockstore: read %s: %w", c, err)
	case !now.packed || now.pack != rec.pack || now.off != rec.off:
		return fmt.Errorf("%w: %s (deleted during the read)", ErrNotFound, c)
	}
	return nil
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
