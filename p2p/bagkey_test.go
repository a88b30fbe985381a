package p2p_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/p2p"
)

func TestBagKey(t *testing.T) {
	for _, bag := range []string{"dynamic:channel:1", "static:council", "dynamic:member:42", ""} {
		t.Run(bag, func(t *testing.T) {
			k := p2p.BagKey(bag)
			if k.Version() != 1 || k.Type() != cid.Raw {
				t.Fatalf("BagKey(%q) = %s: want CIDv1 raw", bag, k)
			}
			dec, err := mh.Decode(k.Hash())
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256([]byte("satchel/bag/" + bag))
			if dec.Code != mh.SHA2_256 || string(dec.Digest) != string(want[:]) {
				t.Fatalf("BagKey(%q) digest = %x (code %x), want sha2-256 %x", bag, dec.Digest, dec.Code, want)
			}
			if !p2p.BagKey(bag).Equals(k) {
				t.Fatal("BagKey is not deterministic")
			}
		})
	}
	if p2p.BagKey("dynamic:channel:1").Equals(p2p.BagKey("dynamic:channel:2")) {
		t.Fatal("different bags share a key")
	}
}

// A provider announces a bag under its key; a client looks the same key up.
// The value is independent of Go: base32 of 0x01 0x55 0x12 0x20 and the
// sha2-256 of "satchel/bag/dynamic:channel:1".
func ExampleBagKey() {
	fmt.Println(p2p.BagKey("dynamic:channel:1"))
	// Output:
	// bafkreif74tt67ohwgs3tweaovy5gdq2njxkafclsvgicdqtabmd4k43lli
}
