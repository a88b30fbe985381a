package p2p_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/satchel-net/satchel/p2p"
)

func quiet() p2p.Option { return p2p.WithLogger(slog.New(slog.DiscardHandler)) }

func TestIdentityPersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node", "keys")
	path := filepath.Join(dir, "identity.key")

	key, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if key.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v, want Ed25519", key.Type())
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700)

	// A host started on the key has the key's peer ID ...
	ctx := context.Background()
	h1, err := p2p.New(ctx, p2p.WithIdentity(key), quiet())
	if err != nil {
		t.Fatal(err)
	}
	first := h1.ID()
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}
	want, _ := peer.IDFromPrivateKey(key)
	if first != want {
		t.Fatalf("host ID %s, key's ID %s", first, want)
	}

	// ... and so does the host of the next start, which loads the same file.
	key2, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !key.Equals(key2) {
		t.Fatal("the reloaded key differs from the created one")
	}
	h2, err := p2p.New(ctx, p2p.WithIdentity(key2), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.ID() != first {
		t.Fatalf("peer ID after restart %s, want %s", h2.ID(), first)
	}
	assertMode(t, path, 0o600)
}

func TestIdentityRefusesReadableKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if _, err := p2p.LoadOrCreateIdentity(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := p2p.LoadOrCreateIdentity(path)
		if err == nil {
			t.Fatalf("mode %04o: key loaded, want a refusal", mode)
		}
		if !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: error %q does not say how to fix it", mode, err)
		}
	}
	// Fixing the permissions as told makes the same key load.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p2p.LoadOrCreateIdentity(path); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}

func TestIdentityRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, err := crypto.MarshalPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"garbage":   []byte("not a key"),
		"secp256k1": secpBytes,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := p2p.LoadOrCreateIdentity(path); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
		// The bad file is left alone, not replaced by a new key.
		if got, _ := os.ReadFile(path); string(got) != string(data) {
			t.Errorf("%s: the file was modified", name)
		}
	}
}

// Processes racing to create the key all end up with the same one.
func TestIdentityConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	keys := make([]crypto.PrivKey, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := p2p.LoadOrCreateIdentity(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i, k := range keys {
		if k == nil || !k.Equals(keys[0]) {
			t.Fatalf("caller %d got a different key", i)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key", len(entries))
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Fatalf("%s: mode %04o, want %04o", path, got, want)
	}
}
