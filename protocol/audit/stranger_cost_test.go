package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
)

// Every challenge costs its challenger's share at least ChallengeCost,
// though it reads nothing: fresh peer IDs, none an operator, asking for an
// object the provider does not hold are answered NOT_FOUND until the
// strangers' shared share is spent (4 challenges of a share of 4 ×
// ChallengeCost, the clock standing still), then refused, while a known
// challenger is still answered. Before session 14 such challenges cost
// nothing, so strangers could be answered (and remembered in the replay
// table) as fast as they could send.
func TestAuditStrangerNotFoundCosts(t *testing.T) {
	at := time.Now()
	now := func() time.Time { return at }
	var known peer.ID
	e := newEnv(t, nil, audit.WithHandlerClock(now), audit.WithChallengerBudget(1, 4*audit.ChallengeCost),
		audit.WithKnownChallengers(func(_ context.Context, p peer.ID) bool { return p == known }))
	known = e.challenger.ID()
	ctx := testCtx(t)
	h, _ := mh.Sum([]byte("not held"), mh.SHA2_256, -1)
	ghost := audit.Target{Bag: testBag, Object: 999, Root: cid.NewCidV1(cid.Raw, h)}
	notFound := 0
	var refusal error
	for i := 0; refusal == nil && i < 8; i++ {
		other := testnet.New(t, 1).Host(0) // a fresh peer ID each time
		if err := other.Connect(ctx, e.net.Host(1).AddrInfo()); err != nil {
			t.Fatal(err)
		}
		c, err := audit.NewClient(other.Libp2p())
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Audit(ctx, e.provider.ID(), ghost, []audit.Sample{{Index: 0}})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case errors.Is(out.Err, audit.ErrRefused):
			refusal = out.Err
		case errors.Is(out.Err, audit.ErrNotHeld):
			notFound++
		default:
			t.Fatalf("a stranger's challenge of an object not held: %v", out.Err)
		}
	}
	if notFound != 4 || refusal == nil || !strings.Contains(refusal.Error(), "operate no storage bucket") {
		t.Fatalf("strangers answered NOT_FOUND %d times, then %v; want 4, then refused for their shared budget", notFound, refusal)
	}
	out, err := e.client(t).Audit(ctx, e.provider.ID(), ghost, []audit.Sample{{Index: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(out.Err, audit.ErrNotHeld) {
		t.Fatalf("a known challenger after the strangers spent their share: %v, want NOT_FOUND", out.Err)
	}
}
