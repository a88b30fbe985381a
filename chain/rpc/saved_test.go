package rpc_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/verify"
	"github.com/satchel-net/satchel/internal/logbuf"
)

// Prove starts from a saved header (Trust.Saved) newer than the root, so
// reads go on once the root is past the trusting period; a saved header
// from another root, another chain, off the endpoint's chain or above its
// head is skipped with a warning and the root used; with only an expired
// root left the error says so.
func TestProveStartsFromSavedHeader(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	src := n.Transport().(verify.Source)
	trust := rpc.Trust{Genesis: n.GenesisFile()}
	const period = time.Hour

	p, err := rpc.Open(ctx, n.RPCAddress(), trust, rpc.WithLogger(quiet), rpc.WithVerifyOptions(verify.WithTrustingPeriod(period)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Transport().WaitForHeight(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.NewClient(p).Params(ctx); err != nil {
		t.Fatal(err)
	}
	saved := p.(*rpc.Proven).Saved()
	p.Close()
	if saved.Height < 3 || saved.ChainID != n.ChainID() || !strings.HasPrefix(saved.Root, "genesis "+n.ChainID()+" ") {
		t.Fatalf("Saved = %+v; want a header at 3 or above of %s, from its genesis", saved, n.ChainID())
	}

	first, err := src.LightBlock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := first.Time.Add(period + saved.Time.Sub(first.Time)/2) // genesis expired, saved not
	prove := func(s *rpc.SavedRoot) (chain.Transport, string, error) {
		t.Helper()
		var logs logbuf.Buffer
		tr := trust
		tr.Saved = s
		pt, err := rpc.Open(ctx, n.RPCAddress(), tr, rpc.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
			rpc.WithVerifyOptions(verify.WithTrustingPeriod(period), verify.WithClock(func() time.Time { return at })))
		if err == nil {
			t.Cleanup(func() { pt.Close() })
		}
		return pt, logs.String(), err
	}

	_, _, err = prove(nil)
	if !errors.Is(err, verify.ErrTrustExpired) || !strings.Contains(err.Error(), "older than the trusting period") {
		t.Fatalf("Open from an expired genesis = %v; want ErrTrustExpired", err)
	}
	pt, logs, err := prove(&saved)
	if err != nil {
		t.Fatalf("Open from the saved header: %v", err)
	}
	if logs != "" {
		t.Errorf("a fitting saved header logged: %s", logs)
	}
	if err := n.Transport().WaitForHeight(ctx, saved.Height+2); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.NewClient(pt).Params(ctx); err != nil {
		t.Fatalf("read from the saved header: %v", err)
	}
	if s := pt.(*rpc.Proven).Saved(); s.Height <= saved.Height || s.Root != saved.Root {
		t.Fatalf("Saved after a read = %+v; want above %d, from root %q", s, saved.Height, saved.Root)
	}

	head, err := n.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unfit := map[string]func(s *rpc.SavedRoot){
		"another root":     func(s *rpc.SavedRoot) { s.Root = "genesis other-chain 00" },
		"another chain ID": func(s *rpc.SavedRoot) { s.ChainID = "other-chain" },
		"a forged hash":    func(s *rpc.SavedRoot) { s.Hash = bytes.Repeat([]byte{7}, 32) },
		"above the head":   func(s *rpc.SavedRoot) { s.Height = head + 1000 },
	}
	for name, spoil := range unfit {
		t.Run(name, func(t *testing.T) {
			s := saved
			s.Hash = bytes.Clone(saved.Hash)
			spoil(&s)
			_, logs, err := prove(&s)
			if !errors.Is(err, verify.ErrTrustExpired) {
				t.Fatalf("Open with %s saved = %v; want the expired root's error (the saved header skipped)", name, err)
			}
			if !strings.Contains(logs, "not starting proven reads from the saved trusted header") || !strings.Contains(logs, "level=WARN") {
				t.Fatalf("no warning for a saved header with %s: %q", name, logs)
			}
		})
	}
}
