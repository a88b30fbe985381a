package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
)

// PoC (secreview, session 14), companion of TestPoCReplayTableFilledByStrangers:
// fresh peer IDs, none an operator, each send DefaultBurst challenges of an
// object the provider does not hold. Every one is answered NOT_FOUND (none
// refused by the strangers' shared byte share or answers-at-once: nothing
// is read) and each records a replay entry. Passes on main; it logs the
// pace one attacker machine reaches, against the 273 a second that fill
// the replay table.
func TestPoCStrangerNotFoundCostsNothing(t *testing.T) {
	e := newEnv(t, nil, audit.WithKnownChallengers(func(context.Context, peer.ID) bool { return false }))
	ctx := testCtx(t)
	h, _ := mh.Sum([]byte("not held"), mh.SHA2_256, -1)
	ghost := audit.Target{Bag: testBag, Object: 999, Root: cid.NewCidV1(cid.Raw, h)}
	const sybils = 4
	notFound, refused, n := 0, 0, 0
	start := time.Now()
	for range sybils {
		other := testnet.New(t, 1).Host(0)
		if err := other.Connect(ctx, e.net.Host(1).AddrInfo()); err != nil {
			t.Fatal(err)
		}
		c, err := audit.NewClient(other.Libp2p())
		if err != nil {
			t.Fatal(err)
		}
		for range audit.DefaultBurst {
			out, err := c.Audit(ctx, e.provider.ID(), ghost, []audit.Sample{{Index: 0}})
			if err != nil {
				t.Fatal(err)
			}
			n++
			switch {
			case errors.Is(out.Err, audit.ErrRefused):
				refused++
			case out.Err != nil:
				notFound++
			}
		}
	}
	el := time.Since(start)
	t.Logf("%d challenges from %d fresh IDs: %d answered (not found), %d refused; %.0f a second from one sequential client under -race",
		n, sybils, notFound, refused, float64(n)/el.Seconds())
	if refused != 0 || notFound != n {
		t.Fatalf("want every stranger challenge answered: %d refused, %d not found of %d", refused, notFound, n)
	}
}
