package p2p_test

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
)

func TestParseAddrInfo(t *testing.T) {
	k, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(k)
	k2, _, _ := crypto.GenerateEd25519Key(nil)
	other, _ := peer.IDFromPrivateKey(k2)
	ai, err := p2p.ParseAddrInfo(id.String(), []string{
		"/ip4/10.0.0.1/tcp/4001",
		"/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + id.String(),
		"/ip4/10.0.0.2/tcp/4001/p2p/" + other.String(), // another peer's: skipped
		"not an address",
	})
	if err != nil || ai.ID != id || len(ai.Addrs) != 2 || ai.Addrs[1].String() != "/ip4/10.0.0.1/udp/4001/quic-v1" {
		t.Fatalf("ParseAddrInfo = %v %v", ai, err)
	}
	if _, err := p2p.ParseAddrInfo("nope", nil); err == nil {
		t.Fatal("a bad peer ID was accepted")
	}
}
