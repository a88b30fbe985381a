package fetch

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// PoC (secreview, session 14): FAILS on main by design.
//
// verifiedRecord.mark says "when full, the oldest half is dropped", but it
// deletes only entries older than VerifiedFor/2 plus the first one it
// meets: with a full record of fresh entries (a peer's ranged GETs of
// 16,384 distinct blocks within 5 minutes, each a whole-block verify its
// budget allows) every further mark walks the whole map under the lock and
// evicts one random entry — often a block an honest reader is ranging
// over, which then costs a whole-block read and hash again.
func TestPoCVerifiedRecordEvictsOne(t *testing.T) {
	v := newVerifiedRecord()
	now := time.Now()
	v.now = func() time.Time { return now }
	for range maxVerified {
		v.mark(randomCID(t))
	}
	honest := randomCID(t)
	v.mark(honest)
	start := time.Now()
	const more = 1000
	for range more {
		v.mark(randomCID(t))
	}
	per := time.Since(start) / more
	t.Logf("after %d more marks: %d entries, honest block still fresh: %v; %v per mark (a full map walk each)",
		more, len(v.at), v.fresh(honest), per)
	if len(v.at) > maxVerified/2+more {
		t.Errorf("record full of fresh entries: %d entries after %d marks, want the oldest half dropped (≤ %d)", len(v.at), more, maxVerified/2+more)
	}
}

func randomCID(t *testing.T) cid.Cid {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	h, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}
