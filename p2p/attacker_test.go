package p2p_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/satchel-net/satchel/p2p"
)

// victimAndAttacker starts a Satchel host and a plain libp2p host (which
// speaks the wire protocols by hand), lets setup prepare the attacker
// before it connects (nil: nothing), and connects it to the victim. Both
// close when the test ends.
func victimAndAttacker(t *testing.T, ctx context.Context, setup func(att host.Host)) (*p2p.Host, host.Host) {
	t.Helper()
	victim, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Close() })
	att, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = att.Close() })
	if setup != nil {
		setup(att)
	}
	if err := att.Connect(ctx, victim.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	return victim, att
}
