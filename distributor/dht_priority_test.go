package distributor_test

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/testnet"
)

// A distributor names the chain's active storage operators — every storage
// provider of the network — as its DHT priority peers, and no other peer:
// their provider records outlast a flood of fresh IDs' on its DHT server.
func TestDistributorNamesOperatorsDHTPriority(t *testing.T) {
	e := newEnv(t, 2)
	srv := e.d.Server()
	for _, p := range e.net.Providers() {
		id := p.Host().ID()
		testnet.Wait(t, "the distributor names provider "+id.String(), func() bool { return srv.RecordPriority(id) })
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := peer.IDFromPrivateKey(k)
	if srv.RecordPriority(stranger) {
		t.Fatal("a peer that operates no bucket is a priority peer")
	}
}
