package fetch

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestVerifiedRecordEvictsLeastRecent fills the verification record with
// fresh entries (a peer's ranged GETs of maxVerified distinct blocks within
// VerifiedFor) and keeps marking: each further mark drops exactly the least
// recently used entry, never a random one, and a block an honest reader
// keeps ranging over stays verified through a whole record's worth of
// others' marks. (It once walked the whole map under the lock on every
// mark and dropped whichever entry the walk met first.)
func TestVerifiedRecordEvictsLeastRecent(t *testing.T) {
	v := newVerifiedRecord()
	now := time.Now()
	v.now = func() time.Time { return now }
	first := make([]cid.Cid, maxVerified)
	for i := range first {
		first[i] = randomCID(t)
		v.mark(first[i])
	}
	honest := randomCID(t)
	v.mark(honest)
	if v.at.Len() != maxVerified {
		t.Fatalf("%d entries after %d marks, want %d", v.at.Len(), maxVerified+1, maxVerified)
	}
	if v.at.Contains(first[0]) || !v.at.Contains(first[1]) {
		t.Fatalf("a full record dropped something other than its oldest entry (oldest kept: %v)", v.at.Contains(first[0]))
	}
	for i := range maxVerified - 1 {
		v.mark(randomCID(t))
		if !v.fresh(honest) {
			t.Fatalf("the honest reader's block was dropped after %d others' marks", i+1)
		}
		if v.at.Contains(first[i+1]) {
			t.Fatalf("mark %d kept the oldest entry %d", i+1, i+1)
		}
	}
	if v.at.Len() != maxVerified {
		t.Errorf("%d entries, want the bound %d", v.at.Len(), maxVerified)
	}
	now = now.Add(VerifiedFor)
	if v.fresh(honest) {
		t.Error("a verification VerifiedFor old still counts as fresh")
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
