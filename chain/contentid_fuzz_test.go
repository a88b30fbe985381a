package chain_test

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// FuzzCanonicalContentID: whatever the input, CanonicalContentID either
// refuses it with ErrBadContentID or returns a CIDv1 in lower-case base32
// that is its own canonical form and names the same multihash.
func FuzzCanonicalContentID(f *testing.F) {
	for _, s := range []string{
		"bafybeifkolcwszz3bkmc343ytys3mse7aje2i55xrwsshymbr2dcbmsu6e",
		"BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU",
		"QmZtqmH4cbjN7wAqAV8ZGKpBHRusESkjqA6439zc95mv3F",
		"zb2rhbEwhWShc7NEmCbu5obETsR2CAaiXU8uXpx4nEEWE3p1C",
		"", "Qm", "b", "hello",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		canon, err := chain.CanonicalContentID(s)
		if err != nil {
			if !errors.Is(err, chain.ErrBadContentID) {
				t.Fatalf("%q: error %v does not carry ErrBadContentID", s, err)
			}
			return
		}
		in, err := cid.Decode(s)
		if err != nil {
			t.Fatalf("%q accepted but does not decode: %v", s, err)
		}
		out, err := cid.Decode(canon)
		if err != nil || out.Version() != 1 || canon[0] != 'b' || out.Hash().HexString() != in.Hash().HexString() {
			t.Fatalf("%q → %q (%v): not a base32 CIDv1 of the same multihash", s, canon, err)
		}
		if again, err := chain.CanonicalContentID(canon); err != nil || again != canon {
			t.Fatalf("%q → %q → %q, %v: not idempotent", s, canon, again, err)
		}
	})
}
