package blockstore

// The serving path's cheap check: a CRC-32C kept beside each block in its
// index entry, checked instead of the block's hash when the block goes to a
// receiver that verifies the CID itself.

import (
	"fmt"
	"hash/crc32"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/satchel-net/satchel/chunker"
)

// castagnoli is the CRC-32C table; hash/crc32 computes it with the CPU's
// CRC32 instructions (SSE 4.2, ARMv8), at several GB/s a core.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockCRC is the checksum kept beside a block.
func blockCRC(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// GetFast returns block c, checked against the CRC-32C stored beside it
// rather than hashed against c: it catches what disks do to bytes (flipped
// bits, torn or truncated files) at a small fraction of the hash's cost, for
// serving blocks to a receiver that verifies the CID anyway. A block whose
// bytes fail the CRC is checked against c as Get does: if they still match
// c the CRC is what was damaged and is rewritten; if not the block is
// quarantined and GetFast returns an error wrapping ErrCorrupt. A block
// stored before the store kept CRCs is verified against c in full once and
// gets its CRC then. A block not held gives an error wrapping ErrNotFound.
// The scrub and audits use Get, which always hashes.
//
// The bytes are in a buffer of the store's pool: a caller that is done with
// them (its reply written) may hand them back with Recycle, so the next
// read needs no new buffer; one that keeps them simply does not.
func (s *Store) GetFast(c cid.Cid) ([]byte, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return nil, err
	}
	data, err := s.readHeld(c, rec, true)
	if err != nil {
		return nil, err
	}
	if rec.hasCRC && uint64(len(data)) == rec.size && blockCRC(data) == rec.crc {
		return data, nil
	}
	// No CRC yet, or a mismatch: the hash decides.
	if verr := chunker.VerifyChunk(c, data); verr != nil {
		s.files.recycle(data)
		why := verr.Error()
		if rec.hasCRC {
			why = fmt.Sprintf("CRC-32C mismatch (%s)", why)
		}
		return nil, s.quarantine(c, why)
	}
	s.setCRC(c, data)
	return data, nil
}

// Recycle hands back a buffer GetFast returned, for a later read to reuse.
// The caller must not touch data afterwards. A slice GetFast did not
// return whole is ignored.
func (s *Store) Recycle(data []byte) { s.files.recycle(data) }

// setCRC records the CRC-32C of block c's verified bytes in its index
// entry, unless the entry changed or went meanwhile. The write is not
// synced: lost, the CRC is computed again on a later read.
func (s *Store) setCRC(c cid.Cid, data []byte) {
	s.gc.RLock()
	defer s.gc.RUnlock()
	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	rec, err := s.blockRecord(c)
	if err != nil || rec.size != uint64(len(data)) {
		return
	}
	rec.crc, rec.hasCRC = blockCRC(data), true
	var b leveldb.Batch
	b.Put(blockKey(c), rec.encode())
	if err := s.writeIndex(&b, false); err != nil {
		s.log.Warn("cannot record a block's CRC-32C; it is verified in full until then", "cid", c, "err", err)
	}
}
