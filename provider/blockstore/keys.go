package blockstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// Index key prefixes. Binary CIDs are self-delimiting (version, codec and
// multihash length are all encoded), so a prefix of one CID's key never
// matches another CID's key.
const (
	pBlock      = 'b' // b<cid>                  → size u64, stored-at unix-nano u64, CRC-32C u32 (absent before the CRC), pack u32 + offset u64 (absent for a legacy file)
	pPack       = 'p' // p<pack u32>             → "" (the pack is sealed)
	pQuarantine = 'q' // q<cid>                  → quarantined-at unix u64
	pManifest   = 'm' // m<obj u64>              → manifest
	pBagObject  = 'o' // o<bag>\x00<obj u64>     → ""
	pObjectRef  = 'r' // r<cid><obj u64>         → ""   (object obj references block cid)
	pSession    = 's' // s<uvarint len><id>      → session record
	pSessBlock  = 't' // t<uvarint len><id><cid> → size u64
	pSessRef    = 'u' // u<cid><uvarint len><id> → ""   (session id references block cid)
	pSync       = 'z' // z                       → never present (Close deletes it, synced, to sync the journal)
	pMeta       = 'i' // i<name>                 → the store's own values (iid: its identity, see identity.go; iclock: the session expiry clock, see expiryclock.go)
)

var syncKey = []byte{pSync}

func blockKey(c cid.Cid) []byte      { return append([]byte{pBlock}, c.Bytes()...) }
func quarantineKey(c cid.Cid) []byte { return append([]byte{pQuarantine}, c.Bytes()...) }

func manifestKey(obj uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pManifest}, obj)
}

func bagPrefix(bag string) []byte {
	k := append([]byte{pBagObject}, bag...)
	return append(k, 0)
}

func bagObjectKey(bag string, obj uint64) []byte {
	return binary.BigEndian.AppendUint64(bagPrefix(bag), obj)
}

func objectRefPrefix(c cid.Cid) []byte { return append([]byte{pObjectRef}, c.Bytes()...) }

func objectRefKey(c cid.Cid, obj uint64) []byte {
	return binary.BigEndian.AppendUint64(objectRefPrefix(c), obj)
}

func lenPrefixed(p byte, id []byte) []byte {
	k := binary.AppendUvarint([]byte{p}, uint64(len(id)))
	return append(k, id...)
}

func sessionKey(id []byte) []byte              { return lenPrefixed(pSession, id) }
func sessBlockPrefix(id []byte) []byte         { return lenPrefixed(pSessBlock, id) }
func sessBlockKey(id []byte, c cid.Cid) []byte { return append(sessBlockPrefix(id), c.Bytes()...) }
func sessRefPrefix(c cid.Cid) []byte           { return append([]byte{pSessRef}, c.Bytes()...) }

func sessRefKey(c cid.Cid, id []byte) []byte {
	k := binary.AppendUvarint(sessRefPrefix(c), uint64(len(id)))
	return append(k, id...)
}

func encodeU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// blockRecord is a block's index entry: its size, when it was stored, the
// CRC-32C (Castagnoli) of its bytes, and where they live: a record of a
// pack, or (packed false) the legacy file blocks/<shard>/<cid> of a store
// written before packs.
type blockRecord struct {
	size     uint64
	storedAt time.Time
	crc      uint32 // CRC-32C of the bytes, when hasCRC
	hasCRC   bool
	packed   bool
	pack     uint32 // the pack's number, when packed
	off      int64  // where the block's record starts in it
}

// Lengths of a block's index entry: in a pack, in a legacy file with its
// CRC-32C, and in a legacy file as written before the store kept CRCs.
const (
	blockRecordPacked = 32
	blockRecordLen    = 20
	blockRecordNoCRC  = 16
)

// encode encodes the entry: size u64, stored-at unix-nano u64, CRC u32,
// then for a packed block the pack u32 and the record's offset u64.
func (r blockRecord) encode() []byte {
	b := make([]byte, 0, blockRecordPacked)
	b = binary.BigEndian.AppendUint64(b, r.size)
	b = binary.BigEndian.AppendUint64(b, uint64(r.storedAt.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, r.crc)
	if r.packed {
		b = binary.BigEndian.AppendUint32(b, r.pack)
		b = binary.BigEndian.AppendUint64(b, uint64(r.off))
	}
	return b
}

func decodeBlockRecord(v []byte) (blockRecord, error) {
	switch len(v) {
	case blockRecordPacked, blockRecordLen, blockRecordNoCRC:
	default:
		return blockRecord{}, fmt.Errorf("bad block record of %d bytes", len(v))
	}
	r := blockRecord{
		size:     binary.BigEndian.Uint64(v),
		storedAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))),
	}
	if len(v) >= blockRecordLen {
		r.crc, r.hasCRC = binary.BigEndian.Uint32(v[16:]), true
	}
	if len(v) == blockRecordPacked {
		r.packed = true
		r.pack = binary.BigEndian.Uint32(v[20:])
		r.off = int64(binary.BigEndian.Uint64(v[24:]))
	}
	return r, nil
}

// packKey marks pack n sealed: rotated out, every write to it finished,
// so every record in it is indexed or punched and recovery skips it.
func packKey(n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{pPack}, n) }

var errShort = errors.New("truncated record")

// reader decodes the index's binary records.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) cid() cid.Cid {
	b := r.bytes()
	if r.err != nil {
		return cid.Undef
	}
	c, err := cid.Cast(append([]byte(nil), b...))
	if err != nil {
		r.err = err
	}
	return c
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

const manifestVersion = 1

func encodeManifest(m Manifest) []byte {
	b := []byte{manifestVersion}
	b = appendBytes(b, []byte(m.Bag))
	b = binary.BigEndian.AppendUint64(b, m.Object)
	b = appendBytes(b, m.Root.Bytes())
	b = binary.BigEndian.AppendUint64(b, m.Size)
	b = binary.AppendUvarint(b, uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		b = appendBytes(b, c.CID.Bytes())
		b = binary.AppendUvarint(b, c.Size)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Nodes)))
	for _, n := range m.Nodes {
		b = appendBytes(b, n.Bytes())
	}
	return b
}

// manifestReader checks an encoded manifest's version and returns a
// reader at its first field, the bag.
func manifestReader(v []byte) (*reader, error) {
	if len(v) == 0 || v[0] != manifestVersion {
		return nil, errors.New("unknown manifest version")
	}
	return &reader{b: v[1:]}, nil
}

func decodeManifest(v []byte) (Manifest, error) {
	r, err := manifestReader(v)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	m.Bag = string(r.bytes())
	m.Object = r.u64()
	m.Root = r.cid()
	m.Size = r.u64()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errShort
	}
	if r.err == nil {
		m.Chunks = make([]ChunkRef, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			c := r.cid()
			m.Chunks = append(m.Chunks, ChunkRef{CID: c, Size: r.uvarint()})
		}
	}
	n = r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errShort
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		m.Nodes = append(m.Nodes, r.cid())
	}
	if r.err != nil {
		return Manifest{}, fmt.Errorf("decode manifest: %w", r.err)
	}
	return m, nil
}

func encodeSession(bag string, expiry time.Time, bytes uint64) []byte {
	b := appendBytes(nil, []byte(bag))
	b = binary.BigEndian.AppendUint64(b, uint64(expiry.Unix()))
	return binary.BigEndian.AppendUint64(b, bytes)
}

func decodeSession(v []byte) (bag string, expiry time.Time, bytes uint64, err error) {
	r := &reader{b: v}
	bag = string(r.bytes())
	expiry = time.Unix(int64(r.u64()), 0)
	bytes = r.u64()
	if r.err != nil {
		return "", time.Time{}, 0, fmt.Errorf("decode session: %w", r.err)
	}
	return bag, expiry, bytes, nil
}
