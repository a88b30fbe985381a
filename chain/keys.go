package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/satchel-net/satchel/internal/fsutil"
)

// Account is an account address: the lower-case hex encoding of the
// account's 32-byte ed25519 public key (64 characters). The address is the
// key, so a signature can be checked from the address alone.
type Account string

// AccountFromPublicKey returns the account of an ed25519 public key.
func AccountFromPublicKey(pub ed25519.PublicKey) Account {
	return Account(hex.EncodeToString(pub))
}

// ParseAccount parses and validates an account address (any case).
func ParseAccount(s string) (Account, error) {
	a := Account(strings.ToLower(strings.TrimSpace(s)))
	if err := a.Validate(); err != nil {
		return "", err
	}
	return a, nil
}

// Validate reports whether a is a well-formed account address.
func (a Account) Validate() error {
	if len(a) != 2*ed25519.PublicKeySize {
		return fmt.Errorf("account %q: want %d lower-case hex characters (an ed25519 public key)", string(a), 2*ed25519.PublicKeySize)
	}
	if _, err := hex.DecodeString(string(a)); err != nil || strings.ToLower(string(a)) != string(a) {
		return fmt.Errorf("account %q: want lower-case hex (an ed25519 public key)", string(a))
	}
	return nil
}

// PublicKey returns the ed25519 public key the address encodes.
func (a Account) PublicKey() (ed25519.PublicKey, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	b, _ := hex.DecodeString(string(a))
	return ed25519.PublicKey(b), nil
}

// String returns the address.
func (a Account) String() string { return string(a) }

// Key is an account's ed25519 signing key. The zero Key is not usable.
type Key struct {
	priv ed25519.PrivateKey
}

// GenerateKey returns a new random key.
func GenerateKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate account key: %w", err)
	}
	return Key{priv: priv}, nil
}

// KeyFromSeed returns the key derived from a 32-byte ed25519 seed. Tests use
// it for reproducible accounts.
func KeyFromSeed(seed []byte) (Key, error) {
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("account key seed: want %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return Key{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// NewKey wraps an ed25519 private key.
func NewKey(priv ed25519.PrivateKey) (Key, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Key{}, fmt.Errorf("account key: want a %d-byte ed25519 private key, got %d bytes", ed25519.PrivateKeySize, len(priv))
	}
	return Key{priv: append(ed25519.PrivateKey(nil), priv...)}, nil
}

// Account returns the key's account address.
func (k Key) Account() Account { return AccountFromPublicKey(k.Public()) }

// Public returns the public key.
func (k Key) Public() ed25519.PublicKey {
	if k.priv == nil {
		return nil
	}
	return k.priv.Public().(ed25519.PublicKey)
}

// PrivateKey returns the ed25519 private key.
func (k Key) PrivateKey() ed25519.PrivateKey { return k.priv }

// Sign signs msg.
func (k Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.priv) == 0 }

// keyFile is the on-disk form of a Key.
type keyFile struct {
	Type    string  `json:"type"`
	Account Account `json:"account"`
	Seed    string  `json:"seed"`
}

const keyFileType = "ed25519"

// SaveKey writes k to path as JSON (type, account, hex seed) with mode 0600,
// creating the directory with mode 0700. It replaces the file atomically.
func SaveKey(path string, k Key) error {
	b, err := marshalKey(k)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("save account key: %w", err)
	}
	return nil
}

// CreateKey writes k to path as SaveKey does, but only as a new file: when
// path exists (even if another process creates it meanwhile) it fails with
// an error wrapping fs.ErrExist and leaves that file alone.
func CreateKey(path string, k Key) error {
	b, err := marshalKey(k)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileNew(path, b, 0o600); err != nil {
		return fmt.Errorf("save account key: %w", err)
	}
	return nil
}

// marshalKey returns the key file of k.
func marshalKey(k Key) ([]byte, error) {
	if k.IsZero() {
		return nil, errors.New("save account key: the key is empty")
	}
	b, err := json.MarshalIndent(keyFile{Type: keyFileType, Account: k.Account(), Seed: hex.EncodeToString(k.priv.Seed())}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("save account key: %w", err)
	}
	return append(b, '\n'), nil
}

// LoadKey reads a key written by SaveKey. A key file its group or other
// users can access is refused (run chmod 600), as ssh refuses such a key and
// as the node's libp2p identity is: whoever reads it can spend the account.
func LoadKey(path string) (Key, error) {
	b, err := fsutil.ReadPrivateFile(path, maxKeyFile)
	if err != nil {
		return Key{}, fmt.Errorf("account key %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Key{}, fmt.Errorf("load account key %s: not a key file: %w", path, err)
	}
	if f.Type != keyFileType {
		return Key{}, fmt.Errorf("load account key %s: type %q, want %q", path, f.Type, keyFileType)
	}
	seed, err := hex.DecodeString(f.Seed)
	if err != nil {
		return Key{}, fmt.Errorf("load account key %s: bad seed: %w", path, err)
	}
	k, err := KeyFromSeed(seed)
	if err != nil {
		return Key{}, fmt.Errorf("load account key %s: %w", path, err)
	}
	if f.Account != "" && f.Account != k.Account() {
		return Key{}, fmt.Errorf("load account key %s: the file names account %s but its seed gives %s; the file is corrupt", path, f.Account, k.Account())
	}
	return k, nil
}

// maxKeyFile bounds what LoadKey reads: a key file is under 200 bytes.
const maxKeyFile = 16 << 10

// LoadOrCreateKey loads the key at path, or generates one and saves it there
// (file 0600, directory 0700) when the file does not exist.
func LoadOrCreateKey(path string) (Key, error) {
	k, err := LoadKey(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, err
	}
	k, err = GenerateKey()
	if err != nil {
		return Key{}, err
	}
	if err := SaveKey(path, k); err != nil {
		return Key{}, err
	}
	return k, nil
}
