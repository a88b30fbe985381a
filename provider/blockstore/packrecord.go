package blockstore

// The record format of a pack file: a 4 KiB header naming the block, then
// the block's bytes padded to 4 KiB, so every record and every block's data
// starts aligned for direct I/O.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ipfs/go-cid"
)

// Record header layout, big-endian, in the first hdrSize bytes of a record:
//
//	0  magic     u32 "SPK1"
//	4  version   u8
//	5  reserved  u8 (zero)
//	6  cid len   u16
//	8  size      u64 (the block's length)
//	16 data CRC  u32 (CRC-32C of the block's bytes)
//	20 cid bytes
//	.. header CRC u32 (CRC-32C of every byte before it)
//
// and zeros to hdrSize. The header CRC tells a header from a torn write or
// from zeros; the data CRC tells a whole record from a torn one without
// hashing it, and the CID check decides in the end.
const (
	hdrSize       = ioAlign
	recordMagic   = 0x53504b31 // "SPK1"
	recordVersion = 1
	hdrFixed      = 20
	maxCIDLen     = 512
)

// recordLen is the length on disk of the record of a block of size bytes.
func recordLen(size uint64) int64 { return hdrSize + int64(roundUp(int(size))) }

// recordHeader is what a record's header says.
type recordHeader struct {
	c    cid.Cid
	size uint64
	crc  uint32
}

// encodeHeader fills hdr (hdrSize bytes) with the header of a record.
func encodeHeader(hdr []byte, c cid.Cid, size uint64, crc uint32) {
	cb := c.Bytes()
	binary.BigEndian.PutUint32(hdr[0:], recordMagic)
	hdr[4], hdr[5] = recordVersion, 0
	binary.BigEndian.PutUint16(hdr[6:], uint16(len(cb)))
	binary.BigEndian.PutUint64(hdr[8:], size)
	binary.BigEndian.PutUint32(hdr[16:], crc)
	n := copy(hdr[hdrFixed:], cb) + hdrFixed
	binary.BigEndian.PutUint32(hdr[n:], crc32.Checksum(hdr[:n], castagnoli))
	clear(hdr[n+4 : hdrSize])
}

var errBadHeader = errors.New("not a record header")

// decodeHeader parses a record header, failing with an error wrapping
// errBadHeader for anything else: zeros, a torn write, block bytes.
func decodeHeader(hdr []byte) (recordHeader, error) {
	if len(hdr) < hdrSize || binary.BigEndian.Uint32(hdr) != recordMagic {
		return recordHeader{}, errBadHeader
	}
	if hdr[4] != recordVersion {
		return recordHeader{}, fmt.Errorf("%w: version %d", errBadHeader, hdr[4])
	}
	cl := int(binary.BigEndian.Uint16(hdr[6:]))
	if cl == 0 || cl > maxCIDLen {
		return recordHeader{}, fmt.Errorf("%w: CID of %d bytes", errBadHeader, cl)
	}
	n := hdrFixed + cl
	if binary.BigEndian.Uint32(hdr[n:]) != crc32.Checksum(hdr[:n], castagnoli) {
		return recordHeader{}, fmt.Errorf("%w: header CRC mismatch", errBadHeader)
	}
	c, err := cid.Cast(append([]byte(nil), hdr[hdrFixed:n]...))
	if err != nil {
		return recordHeader{}, fmt.Errorf("%w: %v", errBadHeader, err)
	}
	return recordHeader{c: c, size: binary.BigEndian.Uint64(hdr[8:]), crc: binary.BigEndian.Uint32(hdr[16:])}, nil
}
