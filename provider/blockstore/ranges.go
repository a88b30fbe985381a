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
// wrapping ErrNotFound, and an offset past the end ErrRange. A deletion of
// the block waits for a range read in flight, so the read returns the
// block's bytes or ErrNotFound, never the zeros of a punched record.
func (s *Store) ReadRange(c cid.Cid, off, n uint64) ([]byte, uint64, error) {
	// Held shared from the lookup to the end of the read: a deletion (gc
	// held exclusively) could otherwise punch the record out in between,
	// and a punched range reads as zeros, which no check here would catch.
	s.gc.RLock()
	defer s.gc.RUnlock()
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
	if uint64(len(buf)) != n {
		// A pack or file shorter than its index entry is damaged: Get
		// finds and quarantines it.
		return nil, 0, fmt.Errorf("%w: %s: read %d of %d bytes at %d", ErrCorrupt, c, len(buf), n, off)
	}
	return buf, rec.size, nil
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
