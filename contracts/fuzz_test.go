package contracts

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/contracts/pb"
)

// FuzzProposal feeds arbitrary gossipsub message bodies to the decoding and
// validation the topic validator runs: it must never panic, must fail only
// with the package's sentinels, and what it accepts must round-trip to the
// same canonical form.
func FuzzProposal(f *testing.F) {
	p := &Proposal{ID: NewID(), Topic: topicA,
		Terms:    Terms{Bag: "dynamic:channel:7", Size: 5 << 20, Chunks: 5, Availability: 3, Speed: 3, Redundancy: 3},
		Duration: 60 * day, Member: 1, RenterPeer: fixedPeer(f, 3), Created: time.Unix(1_800_000_000, 0), TTL: 30 * time.Second}
	p.Sign(seedKey(f, 1))
	good, _ := proto.Marshal(p.ToPB())
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x0a\x03abc"))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxProposalSize {
			return
		}
		var w pb.Proposal
		if err := proto.Unmarshal(b, &w); err != nil {
			return
		}
		got, err := ProposalFromPB(&w)
		if err == nil {
			err = got.Validate()
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrTopicMismatch) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		back, err := ProposalFromPB(got.ToPB())
		if err != nil || !bytes.Equal(back.SigningBytes(), got.SigningBytes()) {
			t.Fatalf("accepted proposal does not round-trip: %v", err)
		}
	})
}
