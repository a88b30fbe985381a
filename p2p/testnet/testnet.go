// Package testnet starts networks of Satchel hosts inside one test process:
// over real loopback TCP and QUIC with New, or over a libp2p mocknet with a
// chosen link latency with NewMock.
//
//	net := testnet.NewMock(t, 20, 5*time.Millisecond)
//	sub, _ := net.Host(3).Subscribe("0f01020303")
//	net.WaitTopicPeers("0f01020303", 1)
//
// The hosts are connected in a ring (or a star) and their DHT routing tables
// are refreshed before New returns, so lookups work at once. t.Cleanup closes
// every host. Waiting is done on events and conditions with deadlines, never
// by sleeping.
package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/p2p"
	"golang.org/x/sync/errgroup"
)

// Timeouts of the network's setup and waits. They are generous: the race
// detector on two shared cores is slow, and a wait returns as soon as its
// condition holds.
const (
	// SetupTimeout bounds starting, connecting and bootstrapping a network.
	// Twenty hosts' routing table refreshes, all at once, took 68 s on two
	// cores busy with other test binaries, and nearly two minutes with CPU
	// hogs beside them; unloaded, the set-up takes a few seconds.
	SetupTimeout = 3 * time.Minute
	// WaitTimeout bounds each Wait method.
	WaitTimeout = 30 * time.Second

	// connectWorkers bounds the connections being set up at once.
	connectWorkers = 4
)

// Topology is how the hosts are connected before the DHT bootstraps.
type Topology int

const (
	// Ring connects host i to host i+1, and the last host to the first.
	Ring Topology = iota
	// Star connects host 0 to every other host.
	Star
)

// An Option configures a network.
type Option func(*config)

type config struct {
	topology Topology
	hostOpts func(i int) []p2p.Option
}

// WithTopology sets how the hosts are connected; the default is Ring. The DHT
// bootstrap that follows connects hosts further, as lookups do.
func WithTopology(t Topology) Option {
	return func(c *config) { c.topology = t }
}

// WithHostOptions adds options to host i's p2p.New call, after the network's
// own (a discarding logger, and for NewMock the mock host). Mock hosts cannot
// take WithIdentity, WithListenAddrs or WithLibp2pOptions.
func WithHostOptions(fn func(i int) []p2p.Option) Option {
	return func(c *config) { c.hostOpts = fn }
}

// Network is a set of connected hosts in one process.
type Network struct {
	t     testing.TB
	hosts []*p2p.Host
	mock  mocknet.Mocknet
}

// New starts n hosts listening on 127.0.0.1 (TCP and QUIC), connects them and
// bootstraps their DHTs.
func New(t testing.TB, n int, opts ...Option) *Network {
	t.Helper()
	cfg := newConfig(opts)
	net := &Network{t: t}
	t.Cleanup(net.close)
	ctx, cancel := context.WithTimeout(context.Background(), SetupTimeout)
	defer cancel()

	for i := range n {
		h, err := p2p.New(ctx, cfg.options(i)...)
		if err != nil {
			t.Fatalf("testnet: start host %d: %v", i, err)
		}
		net.hosts = append(net.hosts, h)
	}
	net.setup(ctx, cfg, func(a, b int) error {
		return connectLoopback(ctx, net.hosts[a], net.hosts[b])
	})
	return net
}

// NewMock starts n hosts on a libp2p mocknet whose links all have the given
// latency, connects them and bootstraps their DHTs. Every host can dial every
// other; Mocknet gives access to the links, to cut some.
func NewMock(t testing.TB, n int, latency time.Duration, opts ...Option) *Network {
	t.Helper()
	cfg := newConfig(opts)
	net := &Network{t: t, mock: mocknet.New()}
	t.Cleanup(net.close)
	ctx, cancel := context.WithTimeout(context.Background(), SetupTimeout)
	defer cancel()

	net.mock.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	for i := range n {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatalf("testnet: generate key: %v", err)
		}
		// Mock hosts are not dialled at their addresses; a loopback one takes
		// the DHT's address filters through the same path as real hosts.
		addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 40000+i))
		lh, err := net.mock.AddPeer(key, addr)
		if err != nil {
			t.Fatalf("testnet: add mock peer %d: %v", i, err)
		}
		h, err := p2p.New(ctx, append([]p2p.Option{p2p.WithHost(lh)}, cfg.options(i)...)...)
		if err != nil {
			t.Fatalf("testnet: start host %d: %v", i, err)
		}
		net.hosts = append(net.hosts, h)
	}
	if err := net.mock.LinkAll(); err != nil {
		t.Fatalf("testnet: link mock peers: %v", err)
	}
	net.setup(ctx, cfg, func(a, b int) error {
		_, err := net.mock.ConnectPeers(net.hosts[a].ID(), net.hosts[b].ID())
		return err
	})
	return net
}

// connectLoopback connects a to b, dialling again while each dial runs
// out of time before ctx does: libp2p gives a dial to a loopback address
// 5 s, handshake included, and on a loaded machine with the race detector
// a handshake took longer ("failed to negotiate security protocol: context
// deadline exceeded"). Any other failure is returned at once.
func connectLoopback(ctx context.Context, a, b *p2p.Host) error {
	for {
		err := a.Connect(ctx, b.AddrInfo())
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// The failed dial left b in the swarm's dial backoff.
		a.ClearDialBackoff(b.ID())
	}
}

func newConfig(opts []Option) config {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func (c config) options(i int) []p2p.Option {
	opts := []p2p.Option{p2p.WithLogger(slog.New(slog.DiscardHandler))}
	if c.hostOpts != nil {
		opts = append(opts, c.hostOpts(i)...)
	}
	return opts
}

// setup connects the hosts in cfg's topology and bootstraps the DHT: once
// every host has a peer in its routing table, each refreshes its table, which
// looks up peers in every bucket.
func (n *Network) setup(ctx context.Context, cfg config, connect func(a, b int) error) {
	n.t.Helper()
	count := len(n.hosts)
	var g errgroup.Group
	g.SetLimit(connectWorkers)
	for _, e := range edges(cfg.topology, count) {
		g.Go(func() error {
			if err := connect(e[0], e[1]); err != nil {
				return fmt.Errorf("testnet: connect host %d to host %d: %w", e[0], e[1], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		n.t.Fatal(err)
	}
	if count < 2 {
		return
	}
	// Identify runs after a connection opens; the DHT adds a peer once it
	// knows the peer speaks /satchel/kad/1.0.0 and the peer answered one
	// lookup within 10 s, and otherwise not before its next fix-up, minutes
	// later. On a loaded machine that lookup can time out and leave a star's
	// leaf with an empty table: a host whose table is still empty once
	// identify confirmed a peer's DHT protocol gets that peer added, as the
	// lookup would have.
	n.seedRoutingTables(ctx)
	n.waitRoutingTables(ctx, 1)

	errs := make([]error, count)
	var wg sync.WaitGroup
	for i, h := range n.hosts {
		wg.Go(func() { errs[i] = h.RefreshRoutingTable(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			n.t.Fatalf("testnet: host %d: %v", i, err)
		}
	}
}

// seedRoutingTables adds to each host's empty routing table its connected
// peers that identify says speak the DHT protocol, once one does.
func (n *Network) seedRoutingTables(ctx context.Context) {
	n.t.Helper()
	for i, h := range n.hosts {
		rt, lh := h.DHT().RoutingTable(), h.Libp2p()
		var kad []peer.ID
		err := Poll(ctx, func() bool {
			if rt.Size() > 0 {
				return true
			}
			kad = kad[:0]
			for _, p := range lh.Network().Peers() {
				if ok, _ := lh.Peerstore().SupportsProtocols(p, p2p.KadProtocol); len(ok) > 0 {
					kad = append(kad, p)
				}
			}
			return len(kad) > 0
		})
		if err != nil {
			var protos [][]protocol.ID
			for _, p := range lh.Network().Peers() {
				ps, _ := lh.Peerstore().GetProtocols(p)
				protos = append(protos, ps)
			}
			n.t.Fatalf("testnet: host %d: no connected peer is known to speak %s (peers %v speak %v): %v",
				i, p2p.KadProtocol, lh.Network().Peers(), protos, err)
		}
		for _, p := range kad {
			_, _ = rt.TryAddPeer(p, true, false)
		}
	}
}

// edges lists the connections of a topology of n hosts.
func edges(t Topology, n int) [][2]int {
	var es [][2]int
	switch t {
	case Star:
		for i := 1; i < n; i++ {
			es = append(es, [2]int{0, i})
		}
	default:
		for i := range n {
			j := (i + 1) % n
			if j == i || (n == 2 && i == 1) {
				continue
			}
			es = append(es, [2]int{i, j})
		}
	}
	return es
}

// Host returns host i.
func (n *Network) Host(i int) *p2p.Host { return n.hosts[i] }

// Hosts returns every host, in order.
func (n *Network) Hosts() []*p2p.Host { return n.hosts }

// Len returns the number of hosts.
func (n *Network) Len() int { return len(n.hosts) }

// Mocknet returns the mocknet of a network made by NewMock, or nil.
func (n *Network) Mocknet() mocknet.Mocknet { return n.mock }

// WaitRoutingTables waits until every host's DHT routing table holds at least
// want peers, failing the test after WaitTimeout.
func (n *Network) WaitRoutingTables(want int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	n.waitRoutingTables(ctx, want)
}

func (n *Network) waitRoutingTables(ctx context.Context, want int) {
	n.t.Helper()
	for i, h := range n.hosts {
		// The routing table announces no changes, so its size is polled.
		err := Poll(ctx, func() bool { return h.DHT().RoutingTable().Size() >= want })
		if err != nil {
			n.t.Fatalf("testnet: host %d: routing table has %d peers, want %d: %v",
				i, h.DHT().RoutingTable().Size(), want, err)
		}
	}
}

// WaitTopicPeers waits until every host knows at least want connected peers
// subscribed to topic (pubsub's ListPeers), failing the test after WaitTimeout.
// Every host joins the topic (p2p.Host.WaitTopicPeers).
func (n *Network) WaitTopicPeers(topic string, want int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	for i, h := range n.hosts {
		if err := h.WaitTopicPeers(ctx, topic, want); err != nil {
			n.t.Fatalf("testnet: host %d: %d peers on topic %q, want %d: %v",
				i, len(h.TopicPeers(topic)), topic, want, err)
		}
	}
}

// Poll checks cond every 10ms until it holds or ctx ends (its error), for
// state that has no event to wait on (internal/ctxsleep.Poll, the one copy
// of this loop).
func Poll(ctx context.Context, cond func() bool) error { return ctxsleep.Poll(ctx, cond) }

// Peers returns the peer IDs of the hosts, in order.
func (n *Network) Peers() []peer.ID {
	ids := make([]peer.ID, len(n.hosts))
	for i, h := range n.hosts {
		ids[i] = h.ID()
	}
	return ids
}

// close closes every host concurrently, then the mocknet.
func (n *Network) close() {
	var wg sync.WaitGroup
	for i, h := range n.hosts {
		wg.Go(func() {
			if err := h.Close(); err != nil {
				n.t.Errorf("testnet: close host %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n.mock != nil {
		if err := n.mock.Close(); err != nil {
			n.t.Errorf("testnet: close mocknet: %v", err)
		}
	}
}
