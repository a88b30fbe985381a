package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListenAddrs are the addresses a host listens on when WithListenAddrs
// is not given: TCP and QUIC on loopback, on ports the OS picks. Nodes that
// serve other machines pass their own.
var DefaultListenAddrs = []string{
	"/ip4/127.0.0.1/tcp/0",
	"/ip4/127.0.0.1/udp/0/quic-v1",
}

// An Option configures a Host built by New.
type Option func(*config) error

type config struct {
	identity       crypto.PrivKey
	listenAddrs    []string
	listenSet      bool
	bootstrap      []peer.AddrInfo
	bootstrapAddrs []string
	dhtMode        dht.ModeOpt
	logger         *slog.Logger
	registerer     prometheus.Registerer
	streamTimeout  time.Duration
	libp2pOpts     []libp2p.Option
	host           host.Host
	pubsubOpts     []pubsub.Option
	memory         MemoryLimits
	memorySet      bool
	providers      ProviderLimits
}

func defaultConfig() config {
	return config{
		listenAddrs:   DefaultListenAddrs,
		dhtMode:       dht.ModeServer,
		logger:        slog.Default(),
		streamTimeout: DefaultStreamTimeout,
		memory:        DefaultMemoryLimits,
		providers:     DefaultProviderLimits,
	}
}

// WithIdentity sets the host's private key, and so its peer ID; see
// LoadOrCreateIdentity. Without it the host gets a fresh ed25519 key and a new
// peer ID on every start.
func WithIdentity(key crypto.PrivKey) Option {
	return func(c *config) error {
		if key == nil {
			return errors.New("WithIdentity: nil key")
		}
		c.identity = key
		return nil
	}
}

// WithListenAddrs replaces DefaultListenAddrs with the given multiaddrs, such as
// "/ip4/0.0.0.0/tcp/4001" or "/ip4/0.0.0.0/udp/4001/quic-v1". Only TCP and
// QUIC-v1 addresses can be served.
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error {
		c.listenAddrs = append([]string(nil), addrs...)
		c.listenSet = true
		return nil
	}
}

// WithBootstrap names peers the DHT connects to whenever its routing table is
// empty, at start and after losing all its peers.
func WithBootstrap(peers ...peer.AddrInfo) Option {
	return func(c *config) error {
		c.bootstrap = append(c.bootstrap, peers...)
		return nil
	}
}

// WithBootstrapAddrs is WithBootstrap for peers written as multiaddrs that end
// in their peer ID, such as "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…", the form a
// configuration file holds. Several addresses of one peer are merged.
func WithBootstrapAddrs(addrs ...string) Option {
	return func(c *config) error {
		c.bootstrapAddrs = append(c.bootstrapAddrs, addrs...)
		return nil
	}
}

// WithDHTMode sets the Kademlia DHT mode. The default, dht.ModeServer, answers
// other peers' queries and stores provider records, which every storage
// provider and distributor must do; dht.ModeClient suits short-lived clients.
func WithDHTMode(mode dht.ModeOpt) Option {
	return func(c *config) error {
		switch mode {
		case dht.ModeServer, dht.ModeClient, dht.ModeAuto, dht.ModeAutoServer:
		default:
			return fmt.Errorf("WithDHTMode: unknown mode %d", mode)
		}
		c.dhtMode = mode
		return nil
	}
}

// WithLogger sets the logger; records carry component=p2p. The default is
// slog.Default(). The host logs at Debug and Info, and at Error only for a
// stream handler that panicked.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithMetrics registers the host's Prometheus collectors (see metrics.go), and
// libp2p's own, on reg. Without it the host records no metrics and registers
// nothing anywhere, the global registry included.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("WithMetrics: nil registerer")
		}
		c.registerer = reg
		return nil
	}
}

// WithStreamTimeout bounds how long an inbound stream handler registered with
// Protocol.SetHandler may run, and how long a stream opened with
// Protocol.NewStream lives when its context has no earlier deadline. The
// default is DefaultStreamTimeout.
func WithStreamTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithStreamTimeout: %v is not positive", d)
		}
		c.streamTimeout = d
		return nil
	}
}

// WithLibp2pOptions appends options to the ones New passes to libp2p.New, for
// what this package does not configure itself, such as a connection gater or
// connection manager in tests. An option that sets what New already sets (the
// identity, say) makes New fail.
func WithLibp2pOptions(opts ...libp2p.Option) Option {
	return func(c *config) error {
		c.libp2pOpts = append(c.libp2pOpts, opts...)
		return nil
	}
}

// WithHost builds the node on an existing libp2p host instead of creating one,
// for hosts libp2p.New cannot make, such as those of a mocknet (see
// p2p/testnet). New takes ownership of h: Close closes it, and so does New
// when it fails. The host's peerstore
// must hold its private key, which gossipsub signs with. It cannot be combined
// with WithIdentity, WithListenAddrs or WithLibp2pOptions.
func WithHost(h host.Host) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("WithHost: nil host")
		}
		c.host = h
		return nil
	}
}

// WithPubSubOptions adds options to the gossipsub router, after the host's
// own (strict signing, the logger, the subscription filter that keeps it to
// Satchel's topics): peer scoring, validation queue sizes.
func WithPubSubOptions(opts ...pubsub.Option) Option {
	return func(c *config) error {
		c.pubsubOpts = append(c.pubsubOpts, opts...)
		return nil
	}
}
