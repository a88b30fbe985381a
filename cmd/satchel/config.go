package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the YAML file named by -c/--configPath. Every field has a working
// default, so a missing file means "use the defaults".
type Config struct {
	// Home is where node state lives (keys, chain data, chunk store).
	Home string `yaml:"home"`
	// Key is the account key file used to sign chain transactions.
	Key string `yaml:"key"`
	// Chain says where the data directory is.
	Chain ChainConfig `yaml:"chain"`
	// P2P configures the libp2p host.
	P2P P2PConfig `yaml:"p2p"`
	// Storage configures `satchel storage server`.
	Storage StorageConfig `yaml:"storage"`
}

// StorageConfig configures a storage provider node.
type StorageConfig struct {
	// DeletionGrace is how long an object the chain deleted is kept before
	// it is removed, e.g. "24h" (default provider.DefaultDeletionGrace);
	// --deletion-grace overrides it.
	DeletionGrace time.Duration `yaml:"deletionGrace"`
}

// ChainConfig locates the data directory chain.
type ChainConfig struct {
	// Home is the CometBFT home of an embedded node (default Home/chain).
	Home string `yaml:"home"`
	// RPC is the CometBFT RPC address of a running node, e.g.
	// http://127.0.0.1:26657. Commands that read or write the chain use it.
	RPC string `yaml:"rpc"`
	// Genesis is the network's genesis file, whose validators every answer
	// of the node at RPC is proven against (default: the genesis.json in
	// the chain home, when there is one).
	Genesis string `yaml:"genesis"`
	// TrustHeight and TrustHash name a header to prove answers from
	// instead of the genesis validators: `satchel chain status` on a node
	// the operator trusts prints them. A network older than the trusting
	// period (two weeks unless TrustingPeriod says otherwise) needs one.
	TrustHeight int64  `yaml:"trustHeight"`
	TrustHash   string `yaml:"trustHash"`
	// TrustRPC believes the node at RPC without proofs (--trust-rpc): for
	// a node the operator runs on the same machine.
	TrustRPC bool `yaml:"trustRPC"`
	// TrustingPeriod is how long a verified header (the root, or the one
	// the last command saved) may start proven reads, e.g. "168h"
	// (default 14 days, verify.DefaultTrustingPeriod).
	TrustingPeriod time.Duration `yaml:"trustingPeriod"`
}

// P2PConfig configures the libp2p host of a node.
type P2PConfig struct {
	// Listen are multiaddrs to listen on.
	Listen []string `yaml:"listen"`
	// Bootstrap are multiaddrs (with /p2p/ peer IDs) of peers to join through.
	Bootstrap []string `yaml:"bootstrap"`
	// IdentityFile holds the node's ed25519 libp2p key (default Home/identity.key).
	IdentityFile string `yaml:"identityFile"`
}

// DefaultConfig returns the configuration used when no file exists.
func DefaultConfig() Config {
	return Config{
		Home:  ".satchel",
		Chain: ChainConfig{RPC: "http://127.0.0.1:26657"},
		P2P: P2PConfig{Listen: []string{
			"/ip4/127.0.0.1/tcp/0",
			"/ip4/127.0.0.1/udp/0/quic-v1",
		}},
	}
}

// LoadConfig reads the YAML config at path over the defaults. A missing file
// is not an error: the defaults apply.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key is an error, not silently a default
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, configError(b, err))
	}
	if err := checkRPC("chain.rpc", cfg.Chain.RPC); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// checkRPC refuses an RPC URL (the setting or flag called name) that no
// command could dial, such as a misspelt scheme, up front rather than as a
// dial error.
func checkRPC(name, rpc string) error {
	scheme, rest, ok := strings.Cut(rpc, "://")
	if !ok {
		return nil // a bare HOST:PORT means http
	}
	switch scheme {
	case "http", "https", "tcp", "unix":
	default:
		return fmt.Errorf("%s %q: scheme %q; want http://HOST:PORT (or https, tcp, unix), e.g. http://127.0.0.1:26657", name, rpc, scheme)
	}
	if rest == "" {
		return fmt.Errorf("%s %q: no address; want e.g. http://127.0.0.1:26657", name, rpc)
	}
	return nil
}

// Config loads the configuration named by --configPath; --trust-rpc sets
// chain.trustRPC. A missing file means the defaults unless -c named it: a
// misspelt path must not silently select another network.
func (a *App) Config() (Config, error) {
	if a.ConfigGiven {
		if _, err := os.Stat(a.ConfigPath); errors.Is(err, fs.ErrNotExist) {
			return DefaultConfig(), fmt.Errorf("config file %s (from -c) does not exist; name an existing file, or leave -c out to use ./config.yml or the defaults", a.ConfigPath)
		}
	}
	cfg, err := LoadConfig(a.ConfigPath)
	if a.TrustRPC {
		cfg.Chain.TrustRPC = true
	}
	return cfg, err
}
