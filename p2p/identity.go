package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"

	"github.com/satchel-net/satchel/internal/fsutil"
)

// identityFileMode makes the key readable by its owner only, as ssh
// requires of its keys; fsutil.WriteFileNew makes a missing directory
// 0700, one only its owner can enter.
const identityFileMode = 0o600

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

// maxIdentityFile bounds what loadIdentity reads: a marshalled ed25519 key
// is 68 bytes.
const maxIdentityFile = 16 << 10

// loadIdentity reads and checks an existing key file. It returns an error
// wrapping fs.ErrNotExist when there is none.
func loadIdentity(path string) (crypto.PrivKey, error) {
	data, err := fsutil.ReadPrivateFile(path, maxIdentityFile)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key %w", err)
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
// there (fsutil.WriteFileNew), which may be another process's: then the
// caller loads that one.
func createIdentity(path string) error {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return fmt.Errorf("p2p: generate identity key: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("p2p: marshal identity key: %w", err)
	}
	if err := fsutil.WriteFileNew(path, data, identityFileMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("p2p: write identity key: %w", err)
	}
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
