package p2p

import (
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// bagKeyPrefix is hashed in front of a bag ID to make its DHT key, so a bag
// key can never collide with the CID of a chunk whose bytes happen to be a
// bag ID.
const bagKeyPrefix = "satchel/bag/"

// BagKey returns the DHT key under which storage providers announce a bag:
// CIDv1(raw, sha2-256("satchel/bag/" + bagID)), where bagID is the bag's
// canonical text form such as "dynamic:channel:1" (docs/PROTOCOL.md, "Bag
// keys"). Providers Provide it for every bag they store and clients find a
// bag's live peers with FindProviders(BagKey(bag)); an independent
// implementation computes the same key from the bag ID alone.
func BagKey(bagID string) cid.Cid {
	sum, err := mh.Sum([]byte(bagKeyPrefix+bagID), mh.SHA2_256, -1)
	if err != nil {
		// sha2-256 is always registered; failing here is a broken build.
		panic("p2p: sha2-256 multihash: " + err.Error())
	}
	return cid.NewCidV1(cid.Raw, sum)
}
