package audit_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
)

// One challenger spending its whole challenge rate (DefaultBurst challenges
// at once) on challenges of MaxSamples whole chunks is cut off by its own
// byte budget, a share of the node-wide one, and a second challenger's
// ordinary challenge is still answered. The clock stands still, so nothing
// refills: the node-wide budget is what the first left of it. Charged by
// challenge count alone, the first spent the whole node-wide budget and the
// second was refused.
func TestAuditOneChallengerCannotTakeTheBudget(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	// A challenge of 8 whole samples here reads about 26 KiB (8 chunks of
	// 256 B, the root and up to 3 second-level DAG nodes of ~6 KiB): the
	// 64 KiB burst covers two or three of them, not DefaultBurst.
	const perSecond, burst = 1 << 10, 64 << 10
	e := newEnv(t, nil, audit.WithHandlerClock(now), audit.WithAnswerBudget(perSecond, burst))
	ctx := testCtx(t)

	whole := make([]audit.Sample, audit.MaxSamples)
	for i := range whole {
		whole[i] = audit.Sample{Index: i * (testChunks / audit.MaxSamples)}
	}
	heavy := e.client(t)
	passed, refused := 0, 0
	for range audit.DefaultBurst {
		out, err := heavy.Audit(ctx, e.provider.ID(), e.target, whole)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case out.Pass:
			passed++
		case errors.Is(out.Err, audit.ErrRefused):
			refused++
		default:
			t.Fatalf("a whole-sample audit: %v", out.Err)
		}
	}
	if passed == 0 || refused == 0 {
		t.Fatalf("the heavy challenger passed %d and was refused %d of %d; want some of each", passed, refused, audit.DefaultBurst)
	}

	c, _ := e.otherClient(t)
	out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 3}, {Index: 250}})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Pass {
		t.Fatalf("another challenger's ordinary audit after the heavy one: %v", out.Err)
	}
	if n := counter(t, e.reg, "satchel_provider_audit_challenges_total", "status", "rate_limited"); n != float64(refused) {
		t.Errorf("rate_limited challenges = %v, want the heavy challenger's %d", n, refused)
	}
}

// A challenger has at most MaxChallengerAnswers challenges answered at
// once (so it overdraws its share by at most that many answers): with two
// of its answers waiting on a slow read its third challenge is refused,
// another challenger is answered, and the two complete once the read does.
func TestAuditChallengerAnswersAtOnce(t *testing.T) {
	var ep atomic.Pointer[env]
	bc := &blockingChunk{ep: &ep, entered: make(chan struct{}, audit.MaxChallengerAnswers), release: make(chan struct{})}
	bc.index.Store(5)
	e := newEnv(t, func(b audit.Blocks) audit.Blocks { bc.Blocks = b; return bc })
	ep.Store(e)
	released := false
	t.Cleanup(func() {
		if !released {
			close(bc.release)
		}
	})
	ctx := testCtx(t)
	done := make(chan error, audit.MaxChallengerAnswers)
	for range audit.MaxChallengerAnswers {
		c := e.client(t) // here: t.Fatal only on the test's goroutine
		go func() {
			out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 5}})
			if err == nil && !out.Pass {
				err = out.Err
			}
			done <- err
		}()
	}
	for range audit.MaxChallengerAnswers {
		select {
		case <-bc.entered:
		case <-ctx.Done():
			t.Fatal("the provider never read the sampled chunk")
		}
	}
	out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 6}})
	if err != nil || !errors.Is(out.Err, audit.ErrRefused) {
		t.Fatalf("a third challenge with two answers under way: %v %v; want ErrRefused", err, out.Err)
	}
	other := testnet.New(t, 1).Host(0)
	if err := other.Connect(ctx, e.net.Host(1).AddrInfo()); err != nil {
		t.Fatal(err)
	}
	c, err := audit.NewClient(other.Libp2p())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 6}}); err != nil || !out.Pass {
		t.Fatalf("another challenger meanwhile: %v %v", err, out.Err)
	}
	close(bc.release)
	released = true
	for range audit.MaxChallengerAnswers {
		if err := <-done; err != nil {
			t.Fatalf("a waiting answer: %v", err)
		}
	}
}

// otherClient is an audit client on a host of its own (a peer ID other
// than the env's challenger), connected to the provider.
func (e *env) otherClient(t *testing.T) (*audit.Client, peer.ID) {
	t.Helper()
	other := testnet.New(t, 1).Host(0)
	if err := other.Connect(testCtx(t), e.net.Host(1).AddrInfo()); err != nil {
		t.Fatal(err)
	}
	c, err := audit.NewClient(other.Libp2p())
	if err != nil {
		t.Fatal(err)
	}
	return c, other.ID()
}

// Challengers the handler does not know (WithKnownChallengers: a provider
// knows the storage operators) share one challenger's budget: a second
// fresh peer ID is refused once a first spent it, while a known
// challenger's audit is answered from its own. Without the option the
// second stranger had a budget of its own.
func TestAuditStrangersShareOneBudget(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var known atomic.Value // peer.ID of the env's challenger, set below
	e := newEnv(t, nil, audit.WithHandlerClock(now), audit.WithChallengerBudget(1<<10, 64<<10),
		audit.WithKnownChallengers(func(_ context.Context, p peer.ID) bool { return p == known.Load() }))
	known.Store(e.challenger.ID())
	ctx := testCtx(t)

	whole := make([]audit.Sample, audit.MaxSamples)
	for i := range whole {
		whole[i] = audit.Sample{Index: i * (testChunks / audit.MaxSamples)}
	}
	first, _ := e.otherClient(t)
	spent := false
	for range audit.DefaultBurst {
		out, err := first.Audit(ctx, e.provider.ID(), e.target, whole)
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(out.Err, audit.ErrRefused) {
			spent = true
			break
		}
		if !out.Pass {
			t.Fatalf("a stranger's whole-sample audit: %v", out.Err)
		}
	}
	if !spent {
		t.Fatalf("a stranger's %d whole-sample audits never spent the strangers' budget", audit.DefaultBurst)
	}
	second, _ := e.otherClient(t)
	out, err := second.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(out.Err, audit.ErrRefused) || !strings.Contains(out.Err.Error(), "operate no storage bucket") {
		t.Fatalf("a second stranger's audit after the first spent their budget: %v; want refused, naming the shared budget", out.Err)
	}
	out, err = e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 3}, {Index: 250}})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Pass {
		t.Fatalf("a known challenger's audit after the strangers spent theirs: %v", out.Err)
	}
}
