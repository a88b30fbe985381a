package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Host is a Satchel node's libp2p host: its identity and transports, the
// gossipsub router, the Kademlia DHT under the /satchel prefix, and the stream
// protocol helpers. It is safe for concurrent use. Close stops all of it.
type Host struct {
	host    host.Host
	dht     *dht.IpfsDHT
	provs   *providerStore // the DHT's provider records
	ps      *pubsub.PubSub
	proto   *Protocol
	log     *slog.Logger
	metrics *metrics

	// ctx lives as long as the host; Close cancels it, which stops pubsub and
	// the goroutines in wg.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	topicsMu sync.Mutex
	topics   map[string]*pubsub.Topic

	closeOnce sync.Once
	closeErr  error
}

// New starts a host: it listens (by default on loopback TCP and QUIC, see
// DefaultListenAddrs), joins gossipsub with strict message signing, and starts
// the DHT in server mode speaking /satchel/kad/1.0.0, which connects to the
// WithBootstrap peers in the background.
//
// Every listen address must be served: a port another socket holds fails
// New with an error that names the address and wraps ErrAddrInUse.
// Gossipsub keeps to Satchel's topics (topics.Names), and the DHT keeps
// provider records only, no values.
//
// ctx bounds construction only; the host runs until Close. The security
// transports are TLS 1.3 (preferred) and Noise, the muxer is yamux. Nothing reaches beyond
// the configured peers: there is no relay, NAT port mapping, hole punching or
// public bootstrap list.
func New(ctx context.Context, opts ...Option) (_ *Host, err error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("p2p: %w", err)
		}
	}
	if cfg.host != nil {
		// New owns a given host from here on, failing or not.
		defer func() {
			if err != nil {
				_ = cfg.host.Close()
			}
		}()
		if cfg.identity != nil || cfg.listenSet || len(cfg.libp2pOpts) > 0 || cfg.memorySet {
			return nil, errors.New("p2p: WithHost cannot be combined with WithIdentity, WithListenAddrs, WithLibp2pOptions or WithMemoryLimits")
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bootstrap, err := bootstrapPeers(cfg.bootstrap, cfg.bootstrapAddrs)
	if err != nil {
		return nil, err
	}

	var m *metrics
	if cfg.registerer != nil {
		if m, err = newMetrics(cfg.registerer); err != nil {
			return nil, fmt.Errorf("p2p: register metrics: %w", err)
		}
	}

	lh := cfg.host
	if lh == nil {
		if lh, err = newLibp2pHost(&cfg); err != nil {
			return nil, err
		}
	}

	hctx, cancel := context.WithCancel(context.Background())
	h := &Host{
		host:    lh,
		log:     cfg.logger.With("component", "p2p", "host", lh.ID()),
		metrics: m,
		ctx:     hctx,
		cancel:  cancel,
		topics:  make(map[string]*pubsub.Topic),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
		}
	}()
	h.proto = newProtocol(lh, h.log, m, cfg.streamTimeout)

	if m != nil {
		if err := h.countPeers(); err != nil {
			return nil, err
		}
	}

	// Provider records live in a bounded store (provstore.go): kad-dht's
	// default, an unbounded map, lets one peer grow the heap at will.
	h.provs = newProviderStore(lh.ID(), cfg.providers, h.metrics)
	dhtOpts := []dht.Option{
		dht.Mode(cfg.dhtMode),
		dht.ProviderDatastore(h.provs),
		dht.ProviderManagerOpts(records.Cache(h.provs.cache)),
		// Satchel stores no values: kad-dht's value store is an unbounded
		// map that takes any peer's /pk and /ipns records, kept whole for
		// 36 hours. Off, PUT_VALUE and GET_VALUE reset the stream.
		dht.DisableValues(),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.AddressFilter(dialableAddrs),
		dht.QueryFilter(queryFilter),
		dht.RoutingTableFilter(routingTableFilter),
	}
	if len(bootstrap) > 0 {
		dhtOpts = append(dhtOpts, dht.BootstrapPeers(bootstrap...))
	}
	if h.dht, err = dht.New(lh, dhtOpts...); err != nil {
		return nil, fmt.Errorf("p2p: start DHT: %w", err)
	}

	h.ps, err = pubsub.NewGossipSub(hctx, lh, append([]pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		subscriptionFilter(), // only Satchel's topics (topicfilter.go)
		pubsub.WithLogger(quietLibrary(cfg.logger).With("component", "pubsub", "host", lh.ID())),
	}, cfg.pubsubOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("p2p: start gossipsub: %w", err)
	}

	h.log.Debug("host started", "addrs", lh.Addrs(), "bootstrap", len(bootstrap))
	return h, nil
}

// newLibp2pHost builds the libp2p host from cfg.
func newLibp2pHost(cfg *config) (host.Host, error) {
	addrs := make([]ma.Multiaddr, 0, len(cfg.listenAddrs))
	for _, s := range cfg.listenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: listen address %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	key := cfg.identity
	if key == nil {
		k, err := newEphemeralKey()
		if err != nil {
			return nil, err
		}
		key = k
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		// listen (listen.go) starts the listeners after, one address at a
		// time, so that each must succeed.
		libp2p.NoListenAddrs,
		// No SO_REUSEPORT: a second node on a taken port must fail to
		// listen, not share the port's connections with the first.
		// Outgoing connections then leave from ephemeral ports.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		// TLS first, as Kubo does: its AES-GCM runs on the CPU's AES
		// instructions and costs a third less CPU per byte than Noise's
		// ChaCha20-Poly1305 here. Noise stays for peers without TLS.
		// Both batch socket calls (BatchedTransport): crypto/tls writes
		// each 16 KiB record with its own write(2) and reads about one
		// record per read(2), and syscalls are dear on these VMs;
		// batched, a stream over TLS costs a quarter less CPU per byte.
		libp2p.Security(libp2ptls.ID, BatchedTLS),
		libp2p.Security(noise.ID, BatchedNoise),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		// Nothing that reaches past the peers we are told about: no circuit
		// relay (libp2p enables relay dialing by default); NAT port mapping,
		// hole punching and AutoNAT v2 stay off, as they are by default.
		libp2p.DisableRelay(),
	}
	if cfg.registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	rm, err := resourceManager(cfg.memory)
	if err != nil {
		return nil, err
	}
	opts = append(opts, rm)
	opts = append(opts, cfg.libp2pOpts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	if err := listen(h, addrs); err != nil {
		return nil, errors.Join(err, h.Close())
	}
	return h, nil
}

// bootstrapPeers merges the configured bootstrap peers.
func bootstrapPeers(infos []peer.AddrInfo, addrs []string) ([]peer.AddrInfo, error) {
	if len(addrs) == 0 {
		return infos, nil
	}
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: bootstrap address %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	parsed, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("p2p: bootstrap addresses must end in /p2p/<peer ID>: %w", err)
	}
	return append(append([]peer.AddrInfo(nil), infos...), parsed...), nil
}

// countPeers keeps the peers_connected gauge current from connectedness
// events, until Close.
func (h *Host) countPeers() error {
	sub, err := h.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("p2p: subscribe to peer events: %w", err)
	}
	connected := make(map[peer.ID]struct{})
	// Subscribed first, then seeded: a peer that connects in between is
	// counted once, by the set.
	for _, p := range h.host.Network().Peers() {
		connected[p] = struct{}{}
	}
	h.metrics.peersDelta(len(connected))
	h.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-h.ctx.Done():
				// Leave a shared registry counting the other hosts only.
				h.metrics.peersDelta(-len(connected))
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				_, was := connected[ev.Peer]
				is := ev.Connectedness == network.Connected || ev.Connectedness == network.Limited
				switch {
				case is && !was:
					connected[ev.Peer] = struct{}{}
					h.metrics.peersDelta(1)
				case !is && was:
					delete(connected, ev.Peer)
					h.metrics.peersDelta(-1)
				}
			}
		}
	})
	return nil
}

// ID returns the host's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// Addrs returns the addresses the host listens on and advertises.
func (h *Host) Addrs() []ma.Multiaddr { return h.host.Addrs() }

// AddrInfo returns the host's peer ID and addresses, what another host needs
// to connect to it.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.host.ID(), Addrs: h.host.Addrs()}
}

// Connect connects to a peer, adding its addresses to the peerstore. It
// returns at once if the peer is already connected.
func (h *Host) Connect(ctx context.Context, pi peer.AddrInfo) error {
	if err := h.host.Connect(ctx, pi); err != nil {
		return fmt.Errorf("p2p: connect to %s: %w", pi.ID, err)
	}
	return nil
}

// ClearDialBackoff forgets the failed dials to p, so that the next dial
// tries its addresses at once: after a failed dial the swarm refuses to
// dial those addresses again for seconds (a backoff that grows with each
// failure). Call it when p is known or likely to be reachable again, as a
// retry after a timeout or a healed outage is.
func (h *Host) ClearDialBackoff(p peer.ID) {
	if sw, ok := h.host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		sw.Backoff().Clear(p)
	}
}

// Libp2p returns the underlying libp2p host, for what this package does not
// wrap. Closing it directly leaves the DHT and pubsub running: use Close.
func (h *Host) Libp2p() host.Host { return h.host }

// DHT returns the Kademlia DHT.
func (h *Host) DHT() *dht.IpfsDHT { return h.dht }

// ProviderRecords returns the number of DHT provider records of other peers
// the host keeps, at most its ProviderLimits.Records.
func (h *Host) ProviderRecords() int {
	all, _ := h.provs.records()
	return all
}

// ProtocolMemory returns the memory the resource manager counts against
// protocol id, every peer's streams together (0 when it cannot say).
func (h *Host) ProtocolMemory(id protocol.ID) int64 {
	var m int64
	_ = h.host.Network().ResourceManager().ViewProtocol(id, func(s network.ProtocolScope) error {
		m = s.Stat().Memory
		return nil
	})
	return m
}

// PubSub returns the gossipsub router.
func (h *Host) PubSub() *pubsub.PubSub { return h.ps }

// Protocol returns the host's stream protocol helper, which registers
// handlers and opens streams with deadlines and metrics.
func (h *Host) Protocol() *Protocol { return h.proto }

// Close stops the stream handlers, the DHT, gossipsub and the libp2p host,
// closing every connection. It returns once the handlers and the host's own
// goroutines have returned; gossipsub, which offers no way to wait, is
// cancelled before the host closes underneath it. Close is idempotent.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		var errs []error
		if h.proto != nil {
			h.proto.shutdown() // no new streams; running handlers see ctx done
		}
		if h.dht != nil {
			if err := h.dht.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close DHT: %w", err))
			}
		}
		h.cancel() // gossipsub and countPeers
		if err := h.host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close libp2p host: %w", err))
		}
		if h.proto != nil {
			h.proto.wait()
		}
		h.wg.Wait()
		if err := errors.Join(errs...); err != nil {
			h.closeErr = fmt.Errorf("p2p: %w", err)
		}
		h.log.Debug("host closed")
	})
	return h.closeErr
}
