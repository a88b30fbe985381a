package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/p2p"
)

// A host told to listen on a port another node holds does not start: the
// error names the address and wraps ErrAddrInUse, whether the holder is a
// Satchel host or a libp2p host that set SO_REUSEPORT (as Satchel's TCP
// listeners did, sharing the port and half its dials). The first node keeps
// the port and answers every dial; once it closes, a new host gets the
// port again, its closed connections notwithstanding.
func TestListenOnTakenPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	tcpAddr, quicAddr := listenAddr(t, first, "tcp"), listenAddr(t, first, "udp")

	for _, tt := range []struct{ name, taken, free string }{
		{"tcp", tcpAddr, ""},
		{"quic", quicAddr, ""},
		// libp2p alone starts when any one address can be served.
		{"tcp taken, quic free", tcpAddr, "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addrs := []string{tt.taken}
			if tt.free != "" {
				addrs = append([]string{tt.free}, addrs...)
			}
			wantTaken(t, ctx, tt.taken, addrs...)
		})
	}

	// The refused hosts left the port to the first: every dial of it
	// reaches the first host.
	for i := range 8 {
		dialer := newDialer(t)
		if err := dialer.Connect(ctx, peer.AddrInfo{ID: first.ID(), Addrs: []ma.Multiaddr{ma.StringCast(tcpAddr)}}); err != nil {
			t.Fatalf("dial %d of %s: %v", i, tcpAddr, err)
		}
		_ = dialer.Close()
	}

	t.Run("port held with SO_REUSEPORT", func(t *testing.T) {
		// libp2p's default TCP transport sets SO_REUSEPORT on its listener.
		old, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		wantTaken(t, ctx, old.Addrs()[0].String(), old.Addrs()[0].String())
	})

	t.Run("restart on the port", func(t *testing.T) {
		h, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := listenAddr(t, h, "tcp")
		dialer := newDialer(t)
		if err := dialer.Connect(ctx, h.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs(addr))
		if err != nil {
			t.Fatalf("restart on %s after closing: %v", addr, err)
		}
		defer again.Close()
		if err := newDialer(t).Connect(ctx, again.AddrInfo()); err != nil {
			t.Fatalf("dial the restarted host: %v", err)
		}
	})
}

// wantTaken starts a host on addrs and wants the error for taken.
func wantTaken(t *testing.T, ctx context.Context, taken string, addrs ...string) {
	t.Helper()
	h, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs(addrs...))
	if err == nil {
		_ = h.Close()
		t.Fatalf("a host listening on %v started while %s was taken", addrs, taken)
	}
	want := fmt.Sprintf("p2p: listen on %s: address in use; pass another --listen", taken)
	if !errors.Is(err, p2p.ErrAddrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("listening on taken %s: %v\nwant an error wrapping ErrAddrInUse that says %q", taken, err, want)
	}
}

// listenAddr returns h's listen address of the transport over network
// ("tcp" or "udp"), port included.
func listenAddr(t *testing.T, h *p2p.Host, network string) string {
	t.Helper()
	for _, a := range h.Libp2p().Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.ProtocolWithName(network).Code); err == nil {
			return a.String()
		}
	}
	t.Fatalf("host listens on no %s address: %v", network, h.Libp2p().Network().ListenAddresses())
	return ""
}

// newDialer starts a libp2p host that listens on nothing.
func newDialer(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
