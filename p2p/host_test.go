package p2p_test

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// A host accepts TCP with Noise, TCP with TLS and QUIC, each muxed by yamux
// where the transport needs a muxer.
func TestTransportsAndSecurity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := p2p.New(ctx, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	tests := []struct {
		name      string
		opts      []libp2p.Option
		addr      func(ma.Multiaddr) bool
		transport string
		security  string
	}{
		{"tcp+noise", []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New)},
			isTCP, "tcp", noise.ID},
		{"tcp+tls", []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(libp2ptls.ID, libp2ptls.New)},
			isTCP, "tcp", libp2ptls.ID},
		{"quic", []libp2p.Option{libp2p.Transport(quic.NewTransport)},
			func(a ma.Multiaddr) bool { return !isTCP(a) }, "quic-v1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]libp2p.Option{
				libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.DisableMetrics(),
				libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
			}, tt.opts...)
			dialer, err := libp2p.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer dialer.Close()
			addrs := slices.DeleteFunc(slices.Clone(h.Addrs()), func(a ma.Multiaddr) bool { return !tt.addr(a) })
			if len(addrs) == 0 {
				t.Fatalf("host has no %s address: %v", tt.transport, h.Addrs())
			}
			if err := dialer.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: addrs}); err != nil {
				t.Fatalf("connect: %v", err)
			}
			conns := dialer.Network().ConnsToPeer(h.ID())
			if len(conns) == 0 {
				t.Fatal("no connection")
			}
			st := conns[0].ConnState()
			if st.Transport != tt.transport {
				t.Errorf("transport %q, want %q", st.Transport, tt.transport)
			}
			if tt.security != "" && string(st.Security) != tt.security {
				t.Errorf("security %q, want %q", st.Security, tt.security)
			}
			if tt.transport == "tcp" && string(st.StreamMultiplexer) != yamux.ID {
				t.Errorf("muxer %q, want %q", st.StreamMultiplexer, yamux.ID)
			}
		})
	}
}

func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}

// A host given bootstrap peers as configuration strings connects to them and
// fills its routing table, with nothing else done. Both hosts share one
// metrics registry, as hosts in one process may.
func TestBootstrapFromConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	seed, err := p2p.New(ctx, quiet(), p2p.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	var config []string
	for _, a := range addrs {
		config = append(config, a.String())
	}

	h, err := p2p.New(ctx, quiet(), p2p.WithMetrics(reg), p2p.WithBootstrapAddrs(config...))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	poll(t, ctx, "the seed in the routing table", func() bool {
		return h.DHT().RoutingTable().Find(seed.ID()) != ""
	})
	// One peer connected on each side, counted in the shared registry.
	waitMetric(t, reg, 2, "satchel_p2p_peers_connected")

	if _, err := p2p.New(ctx, quiet(), p2p.WithBootstrapAddrs("/ip4/127.0.0.1/tcp/4001")); err == nil ||
		!strings.Contains(err.Error(), "/p2p/") {
		t.Fatalf("bootstrap address without a peer ID: err %v, want one that asks for /p2p/", err)
	}
}

// An unsigned message never reaches a subscriber. (A forged signature cannot
// be sent through the pubsub API, which validates what it publishes.)
func TestGossipRequiresSignatures(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	sub, err := h.Subscribe(contractTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()

	// A peer whose gossipsub neither signs nor requires signatures.
	mn := net.Mocknet()
	raw, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, raw, pubsub.WithMessageSignaturePolicy(pubsub.LaxNoSign))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(contractTopic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(raw.ID(), h.ID()); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the raw peer to see the subscription", func() bool {
		return slices.Contains(ps.ListPeers(contractTopic), h.ID())
	})

	rawKey := raw.Peerstore().PrivKey(raw.ID())
	if err := topic.Publish(ctx, []byte("unsigned")); err != nil {
		t.Fatal(err)
	}
	if err := topic.Publish(ctx, []byte("signed"), pubsub.WithSecretKeyAndPeerId(rawKey, raw.ID())); err != nil {
		t.Fatal(err)
	}
	// Both go out in order on one stream. The unsigned one is dropped before
	// validation; had it been accepted it would be delivered first.
	msg, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "signed" || msg.GetFrom() != raw.ID() {
		t.Fatalf("first message delivered: %q from %s, want the signed one from %s", msg.Data, msg.GetFrom(), raw.ID())
	}
}

// Close leaves no goroutine of the host behind.
func TestCloseStopsGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func() {
		a, err := p2p.New(ctx, quiet(), p2p.WithMetrics(prometheus.NewRegistry()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := p2p.New(ctx, quiet(), p2p.WithBootstrap(a.AddrInfo()))
		if err != nil {
			t.Fatal(err)
		}
		a.Protocol().SetHandler(echoProtocol, echo(a.Protocol()))
		for _, h := range []*p2p.Host{a, b} {
			sub, err := h.Subscribe(contractTopic)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Cancel()
		}
		poll(t, ctx, "a routing table entry", func() bool { return b.DHT().RoutingTable().Size() > 0 })
		if err := b.Provide(ctx, testCID(t, "leak")); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, contractTopic, []byte("x")); err != nil {
			t.Fatal(err)
		}
		for _, h := range []*p2p.Host{b, a} {
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first run starts process-wide goroutines that libraries keep (caches,
	// shared UDP sockets' janitors); the second must add nothing to them.
	run()
	settle(ctx)
	base := runtime.NumGoroutine()
	run()
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	err := testnet.Poll(wait, func() bool { return runtime.NumGoroutine() <= base })
	if err != nil {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base,
			buf[:runtime.Stack(buf, true)])
	}
}

// settle waits for the goroutine count to stop falling, as goroutines that a
// Close cancelled finish exiting.
func settle(ctx context.Context) {
	last := runtime.NumGoroutine()
	stable := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for stable < 10 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if n := runtime.NumGoroutine(); n < last {
			last, stable = n, 0
		} else {
			stable++
		}
	}
}

// poll waits until cond holds (testnet.Poll), failing t with what it waited
// for when ctx ends first.
func poll(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := testnet.Poll(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
