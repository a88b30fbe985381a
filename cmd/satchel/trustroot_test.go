package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/verify"
)

// setTrustClock makes headers be checked at the time f returns.
func setTrustClock(t *testing.T, f func() time.Time) {
	t.Helper()
	prev := trustClock
	trustClock = f
	t.Cleanup(func() { trustClock = prev })
}

// mustReadTrustedHeader reads the saved header of tc's home.
func (tc *testChain) mustReadTrustedHeader() *rpc.SavedRoot {
	tc.t.Helper()
	s, err := readTrustedHeader(trustedHeaderFile(tc.cfg))
	if err != nil {
		tc.t.Fatalf("saved trusted header: %v", err)
	}
	return s
}

// A command saves the latest header its proven reads verified under the
// home; once the configured root (the genesis of the chain home) is past
// the trusting period, the next command starts from the saved header. A
// corrupt file or a header saved from another chain is ignored with a
// warning and the configured root used; with it expired the error says
// what to do.
func TestTrustedHeaderOutlivesTheRoot(t *testing.T) {
	tc := startTestChain(t)
	// The warnings go to each command's stderr, its logger's.
	var logs strings.Builder
	ok := func(args ...string) {
		t.Helper()
		out, errOut, code := tc.run(args...)
		logs.WriteString(errOut)
		if code != 0 {
			t.Fatalf("satchel %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), code, errOut, out)
		}
	}
	fails := func(want []string, args ...string) {
		t.Helper()
		logs.WriteString(tc.fails(want, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := trustedHeaderFile(tc.cfg)
	if err := tc.node.Transport().WaitForHeight(ctx, 3); err != nil {
		t.Fatal(err)
	}
	ok("params")
	saved := tc.mustReadTrustedHeader()
	if saved.Height < 3 || saved.ChainID != tc.node.ChainID() || !strings.HasPrefix(saved.Root, "genesis "+tc.node.ChainID()+" ") {
		t.Fatalf("saved header %+v; want one at 3 or above of chain %s, from its genesis", saved, tc.node.ChainID())
	}

	// A clock at which the genesis is past the trusting period and the
	// saved header is not.
	first, err := tc.node.Transport().(verify.Source).LightBlock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := first.Time.Add(verify.DefaultTrustingPeriod + saved.Time.Sub(first.Time)/2)
	expired := func() { setTrustClock(t, func() time.Time { return at }) }
	expired()
	// A command that starts from the saved header leaves it while the
	// latest is less than trustSaveInterval younger (no rewrite and fsync
	// per command) ...
	ok("params")
	if next := tc.mustReadTrustedHeader(); next.Height != saved.Height || !bytes.Equal(next.Hash, saved.Hash) {
		t.Fatalf("saved header after a command a few blocks later: %+v; want it left at %d", next, saved.Height)
	}
	// ... and saves the latest once it is.
	prevInterval := trustSaveInterval
	trustSaveInterval = time.Nanosecond
	t.Cleanup(func() { trustSaveInterval = prevInterval })
	ok("params")
	if next := tc.mustReadTrustedHeader(); next.Height <= saved.Height || next.Root != saved.Root {
		t.Fatalf("saved header after a command from it: %+v; want above %d, from root %q", next, saved.Height, saved.Root)
	}
	// A saved time later than the header's own (a hand-edited file: the
	// file's time is not verified) does not keep the file from being
	// rewritten.
	trustSaveInterval = prevInterval
	future := tc.mustReadTrustedHeader()
	future.Time = future.Time.Add(24 * time.Hour)
	if err := saveTrustedHeader(path, *future); err != nil {
		t.Fatal(err)
	}
	ok("params")
	if next := tc.mustReadTrustedHeader(); next.Height <= future.Height || next.Time.After(future.Time) {
		t.Fatalf("saved header after a command from one with a future time: %+v; want above %d", next, future.Height)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings while the saved header fits:\n%s", logs.String())
	}

	refused := []string{"older than the trusting period", "chain.trustHeight", "satchel chain status", "--trust-rpc"}
	writeFile(t, path, `{"height": 12, "hash": "not hex"`)
	fails(refused, "params")
	if !strings.Contains(logs.String(), "ignoring the saved trusted header") {
		t.Fatalf("no warning about the corrupt file:\n%s", logs.String())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	fails(refused, "params") // no saved header at all

	// A header saved on another chain is skipped with a warning: with the
	// configured root expired the command fails, with it fresh it works
	// and the file then holds this chain's header.
	other := startTestChain(t)
	other.ok("params")
	theirs, err := os.ReadFile(trustedHeaderFile(other.cfg))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(theirs))
	fails(refused, "params")
	if !strings.Contains(logs.String(), "verified from another trust root") {
		t.Fatalf("no warning about the other chain's header:\n%s", logs.String())
	}
	setTrustClock(t, time.Now)
	ok("params")
	if got := tc.mustReadTrustedHeader(); got.ChainID != tc.node.ChainID() || got.Root != saved.Root {
		t.Fatalf("saved header after a command from the configured root: %+v; want chain %s from %q", got, tc.node.ChainID(), saved.Root)
	}
}

// The saved header is replaced whole (a temporary file renamed over it),
// never rewritten in place, and a failed save leaves no temporary file.
func TestSaveTrustedHeaderIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trusted-header.json")
	s := rpc.SavedRoot{
		Header: verify.Header{ChainID: "c", Height: 5, Hash: bytes.Repeat([]byte{1}, 32), Time: time.Unix(1e9, 0).UTC()},
		Root:   "genesis c 00",
	}
	if err := saveTrustedHeader(path, s); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Height = 6
	if err := saveTrustedHeader(path, s); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("the saved header was rewritten in place, not replaced by a rename")
	}
	got, err := readTrustedHeader(path)
	if err != nil || got.Height != 6 || !bytes.Equal(got.Hash, s.Hash) || !got.Time.Equal(s.Time) || got.Root != s.Root {
		t.Fatalf("read back %+v, %v; want %+v", got, err, s)
	}

	// A save that cannot rename (a directory in the way) fails and leaves
	// nothing behind.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := saveTrustedHeader(blocked, s); err == nil {
		t.Fatal("save over a directory succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "trusted-header.json" && e.Name() != "blocked" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if _, err := readTrustedHeader(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read of a missing file = %v; want ErrNotExist", err)
	}
}

// A long-running command saves the latest verified header as it goes, not
// only when it stops: a server that crashes restarts from a recent header.
func TestServerSavesTrustedHeaderWhileRunning(t *testing.T) {
	tc := startTestChain(t)
	prev := trustSaveInterval
	trustSaveInterval = 20 * time.Millisecond
	t.Cleanup(func() { trustSaveInterval = prev })
	cfg, err := LoadConfig(tc.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, release, err := connectChain(cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := trustedHeaderFile(cfg)
	// savedAbove waits until the file holds a header above h, reading
	// through c meanwhile so that it verifies newer headers.
	savedAbove := func(h int64) int64 {
		t.Helper()
		for {
			if _, err := c.Params(ctx); err != nil {
				t.Fatal(err)
			}
			if s, err := readTrustedHeader(path); err == nil && s.Height > h {
				return s.Height
			}
			if ctx.Err() != nil {
				t.Fatalf("no header above %d saved while the client runs", h)
			}
			if _, err := c.WaitForNextBlock(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := savedAbove(0)
	savedAbove(first)
}
