package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"

	"github.com/satchel-net/satchel/internal/fsutil"
)

// Identity file permissions: the key is readable by its owner only, in a
// directory only its owner can enter, as ssh requires of its keys.
const (
	identityFileMode = 0o600
	identityDirMode  = 0o700
)

// LoadOrCreateIdentity returns the node's ed25519 identity key stored at path,
// creating it when the file does not exist.
//
// A new key is written with permissions 0600 (its directory, when created,
// 0700), marshalled with crypto.MarshalPrivateKey, and published atomically: a
// concurrent caller either sees no file or the whole key, and two callers
// racing to create it end up with the same key. An existing key file that its
// group or other users can access is refused, like ssh refuses such a key: the
// key is the node's peer ID, and whoever reads it can impersonate the node.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	key, err := loadIdentity(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createIdentity(path); err != nil {
		return nil, err
	}
	return loadIdentity(path)
}

// loadIdentity reads and checks an existing key file. It returns an error
// wrapping fs.ErrNotExist when there is none.
func loadIdentity(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("p2p: open identity key: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("p2p: identity key %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("p2p: identity key %s has permissions %04o and is accessible by other users; "+
			"it must be readable by its owner only: run chmod 600 %s", path, perm, path)
	}

	// A marshalled ed25519 key is 68 bytes; refuse anything absurdly large
	// before reading it.
	const maxKeyFile = 16 << 10
	if info.Size() > maxKeyFile {
		return nil, fmt.Errorf("p2p: identity key %s is %d bytes, too large to be a key", path, info.Size())
	}
	data := make([]byte, info.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("p2p: read identity key %s: %w", path, err)
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key %s is not a libp2p private key: %w", path, err)
	}
	if key.Type() != cryptopb.KeyType_Ed25519 {
		return nil, fmt.Errorf("p2p: identity key %s is a %s key; Satchel node identities are ed25519", path, key.Type())
	}
	return key, nil
}

// createIdentity writes a fresh key to path unless a file already exists
// there. The key goes to a private temporary file first, is synced, and is then
// hard-linked into place, which fails instead of replacing a key another
// process created meanwhile.
func createIdentity(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, identityDirMode); err != nil {
		return fmt.Errorf("p2p: create identity directory: %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return fmt.Errorf("p2p: generate identity key: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("p2p: marshal identity key: %w", err)
	}

	tmp, err := os.CreateTemp(dir, ".identity-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(identityFileMode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process won the race; use its key
		}
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
	_ = fsutil.SyncDir(dir) // best effort: the key file itself is synced
	return nil
}

// newEphemeralKey generates the identity of a host started without
// WithIdentity.
func newEphemeralKey() (crypto.PrivKey, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate identity key: %w", err)
	}
	return key, nil
}
