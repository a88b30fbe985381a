package fetch

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
)

// Ranged reads. A GET of a range reads only that range from disk when the
// block was read whole and verified against its CID within VerifiedFor;
// otherwise the handler reads the whole block, verifies it, records the
// verification and answers the range from it — within the peer's
// verification budget (verifybudget.go), past which such a range is
// refused. A run of ranged reads of one
// block therefore costs one whole-block read and hash per VerifiedFor, then
// only the bytes asked for. The integrity guarantee of a range is "the block
// matched its CID when last verified, at most VerifiedFor ago" (and the scrub
// re-verifies every block in the background); a whole block is verified on
// every read. docs/PROTOCOL.md, "Fetch", says so to readers: a range cannot
// be checked against a CID by the reader, a whole block can and must be.

// RangeReader is what a Blocks implementation offers to serve ranges
// proportionately: ReadRange reads n bytes of block c from offset off (fewer
// at the block's end) without verifying them, and returns the block's size.
// A block not held gives an error wrapping ErrNotFound.
type RangeReader interface {
	ReadRange(c cid.Cid, off, n uint64) (data []byte, size uint64, err error)
}

// ReadRecorder is what a Policy may offer to learn which blocks were
// served: RecordRead is called when a GET's reply carrying a block's bytes
// is built, before it is written (not after HAVE, which reads nothing). A
// Policy that is a ReadPolicy records through ServeRead's done instead and
// gets no RecordRead calls.
type ReadRecorder interface {
	RecordRead(c cid.Cid)
}

const (
	// VerifiedFor is how long a whole-block verification lets ranges of the
	// block be served from disk without hashing the block again.
	VerifiedFor = 10 * time.Minute
	// maxVerified bounds the verification record (about 200 bytes an entry).
	maxVerified = 16384
)

// verifiedRecord remembers when blocks were last verified whole. It is
// bounded and least-recently-used: when full, recording a block drops the
// one entry neither verified nor ranged over for longest, in constant
// time. A peer that verifies many distinct blocks pushes out the entries
// least used, not a block another reader keeps ranging over.
type verifiedRecord struct {
	mu  sync.Mutex
	at  *simplelru.LRU[cid.Cid, time.Time]
	now func() time.Time
}

func newVerifiedRecord() *verifiedRecord {
	at, err := simplelru.NewLRU[cid.Cid, time.Time](maxVerified, nil)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	return &verifiedRecord{at: at, now: time.Now}
}

// fresh reports whether c was verified within VerifiedFor; asking keeps c
// among the most recently used.
func (v *verifiedRecord) fresh(c cid.Cid) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.at.Get(c)
	return ok && v.now().Sub(t) < VerifiedFor
}

// mark records that c was verified now.
func (v *verifiedRecord) mark(c cid.Cid) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.at.Add(c, v.now())
}

// forget drops c's record, for a block found corrupt.
func (v *verifiedRecord) forget(c cid.Cid) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.at.Remove(c)
}
