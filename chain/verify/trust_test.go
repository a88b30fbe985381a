package verify_test

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/verify"
)

// A root older than the trusting period starts no verification and says
// so (ErrTrustExpired, not a lie); the latest header a transport verified
// starts a later one in its place, checked as any trusted header; and a
// long-lived transport whose every header has aged past the period fails
// with the same error.
func TestTrustExpiresAndLatestHeaderStartsAgain(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	src := n.Transport().(verify.Source)
	trust, err := verify.TrustGenesisFile(n.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	const period = time.Hour
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	opts := func(now func() time.Time) []verify.Option {
		return []verify.Option{verify.WithTrustingPeriod(period), verify.WithClock(now), verify.WithLogger(quiet), verify.WithEndpoint("node")}
	}

	vt, err := verify.New(ctx, n.Transport(), trust, opts(clock)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := vt.Latest(); got.Height != 1 || got.ChainID != n.ChainID() {
		t.Fatalf("Latest before any read = %+v; want the root, block 1 of %s", got, n.ChainID())
	}
	if vt.TrustingPeriod() != period {
		t.Fatalf("TrustingPeriod = %v, want %v", vt.TrustingPeriod(), period)
	}
	if err := n.Transport().WaitForHeight(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.NewClient(vt).Params(ctx); err != nil {
		t.Fatal(err)
	}
	latest := vt.Latest()
	lb, err := src.LightBlock(ctx, latest.Height)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Height < 3 || !bytes.Equal(latest.Hash, lb.Hash()) || !latest.Time.Equal(lb.Time) || latest.ChainID != n.ChainID() {
		t.Fatalf("Latest = %+v; want the header at %d or above: hash %X, time %v", latest, latest.Height, lb.Hash(), lb.Time)
	}

	// A clock at which the genesis is past the trusting period, the latest
	// header not yet.
	first, err := src.LightBlock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := first.Time.Add(period + latest.Time.Sub(first.Time)/2)
	later := func() time.Time { return at }
	_, err = verify.New(ctx, n.Transport(), trust, opts(later)...)
	var ee *verify.ExpiredError
	if !errors.Is(err, verify.ErrTrustExpired) || !errors.As(err, &ee) || ee.Height != 1 || ee.Period != period ||
		errors.Is(err, verify.ErrLyingEndpoint) || !strings.Contains(err.Error(), "older than the trusting period") {
		t.Fatalf("New from an expired genesis = %v; want an ExpiredError for block 1", err)
	}

	if err := n.Transport().WaitForHeight(ctx, latest.Height+2); err != nil {
		t.Fatal(err)
	}
	again, err := verify.New(ctx, n.Transport(), latest.Trust(), opts(later)...)
	if err != nil {
		t.Fatalf("New from the latest verified header: %v", err)
	}
	if _, err := chain.NewClient(again).Params(ctx); err != nil {
		t.Fatalf("read from the latest verified header: %v", err)
	}
	if got := again.Latest(); got.Height <= latest.Height {
		t.Fatalf("Latest after a read = %d; want above the root %d", got.Height, latest.Height)
	}

	// A saved header is checked as any trusted header.
	other := latest
	other.ChainID = "another-chain"
	if _, err := verify.New(ctx, n.Transport(), other.Trust(), opts(later)...); !errors.Is(err, verify.ErrLyingEndpoint) {
		t.Fatalf("New from a header of another chain ID = %v; want it refused", err)
	}
	if _, err := verify.New(ctx, n.Transport(), latest.Trust(), opts(func() time.Time { return latest.Time.Add(period) })...); !errors.Is(err, verify.ErrTrustExpired) {
		t.Fatalf("New from the latest header one period on = %v; want ErrTrustExpired", err)
	}

	// The first transport's headers all age past the period: a read that
	// needs a new header fails with the same error.
	skew.Store(int64(2 * period))
	h := vt.Latest().Height
	if err := n.Transport().WaitForHeight(ctx, h+2); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.NewClient(vt).Params(ctx); !errors.Is(err, verify.ErrTrustExpired) || errors.Is(err, verify.ErrLyingEndpoint) {
		t.Fatalf("read once every header expired = %v; want ErrTrustExpired", err)
	}
}
