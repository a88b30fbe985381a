package contracts_test

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/topics"
)

// A provider fills in its side of a contract and signs; the renter
// countersigns; anyone can then check both signatures from the contract
// alone, as a peer in another language does from docs/PROTOCOL.md.
func Example() {
	renter, _ := chain.GenerateKey()
	operator, _ := chain.GenerateKey()
	nodeKey, _, _ := crypto.GenerateEd25519Key(nil)
	nodeID, _ := peer.IDFromPrivateKey(nodeKey)

	start := time.Now().Truncate(time.Second)
	c := &contracts.Contract{
		ID:    contracts.NewID(),
		Topic: topics.New(topics.Low, topics.Medium, topics.High, topics.High),
		Terms: contracts.Terms{
			Bag: "dynamic:channel:7", Size: 5 << 20, Chunks: 5,
			Availability: topics.High, Speed: topics.High, Redundancy: 3,
		},
		Start: start, End: start.Add(60 * 24 * time.Hour),
		Member: 1, Worker: 4, Bucket: 5, ProviderPeer: nodeID,
		Renter: renter.Account(),
	}
	c.SignAsProvider(operator) // OFFER
	fmt.Println("offer:", c.VerifyProvider())
	c.SignAsRenter(renter) // CONSIGN
	fmt.Println("contract:", c.Verify())
	fmt.Println("topic:", c.Topic)

	c.Size++ // any change breaks both signatures
	fmt.Println("tampered:", c.Verify() != nil)
	// Output:
	// offer: <nil>
	// contract: <nil>
	// topic: 0f01020303
	// tampered: true
}
