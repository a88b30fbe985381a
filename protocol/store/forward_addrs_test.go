package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
)

// countingTCP listens on loopback TCP and counts the connections it
// accepts (closing each at once); it returns its port and the count.
func countingTCP(t *testing.T) (port int, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, accepted
}

// countingUDP is countingTCP for UDP: it counts the datagrams that reach
// its port and answers none.
func countingUDP(t *testing.T) (port int, received *atomic.Int64) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	received = new(atomic.Int64)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port, received
}

// deadPort returns a loopback TCP port nothing listens on.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// ghostPeer is a peer ID no host has.
func ghostPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustAddrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = a
	}
	return out
}

// TestForwardListAddressesNotProbed: an uploader's forward list names two
// hops no provider knows: one at addresses a provider does not dial (a
// host name, resolved to a listener of the test's, and the unspecified
// address), one at a loopback port nothing listens on. The head dials none
// of the first (the listener accepts nothing) and reports both with the
// same generic reason, naming no dial error, address or port, then
// routes the chunk on to the real provider after them.
func TestForwardListAddressesNotProbed(t *testing.T) {
	e := newPLEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listen, accepted := countingTCP(t)
	dead := deadPort(t)
	named, unreached := ghostPeer(t), ghostPeer(t)
	data := spRand(61, 100<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	c := spPush(t, res, data, 1, 0)
	c.Forward = append([]store.Hop{
		{Peer: named, Addrs: mustAddrs(t, fmt.Sprintf("/dns4/localhost/tcp/%d", listen), fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", listen))},
		{Peer: unreached, Addrs: mustAddrs(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", dead))},
	}, e.hops(2)...)
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if signed := checkReceipts(t, res, 0, r); len(signed) != 2 || !signed[e.id(1)] || !signed[e.id(2)] {
		t.Fatalf("receipts %v; want providers 1 and 2", r.Receipts)
	}
	if len(r.Failed) != 2 {
		t.Fatalf("failed hops %v; want the two unknown ones", r.Failed)
	}
	for _, f := range r.Failed {
		reason := f.Err.Error()
		if f.Peer != named && f.Peer != unreached {
			t.Fatalf("hop %s failed: %v", f.Peer, f.Err)
		}
		if !strings.Contains(reason, "could not reach hop") {
			t.Fatalf("hop %s: reason %q; want the generic one", f.Peer, reason)
		}
		for _, leak := range []string{"dial", "refused", "localhost", "127.0.0.1", "0.0.0.0", strconv.Itoa(listen), strconv.Itoa(dead)} {
			if strings.Contains(reason, leak) {
				t.Fatalf("hop %s: reason %q tells the uploader %q", f.Peer, reason, leak)
			}
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the head dialled a forward address it should not: the listener accepted %d connections", n)
	}
}

// TestForwardPrefersKnownAddresses: the head knows where the next hop is
// (its peerstore holds the hop's own TCP address; they are not connected),
// and the forward list gives another, dialable address for it (QUIC, which
// libp2p would dial first). The head dials the hop where it knows it is:
// the list's address gets no packet, and the hop signs.
func TestForwardPrefersKnownAddresses(t *testing.T) {
	e := newPLEnvRelay(t, 2, true, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 2 {
			return []p2p.Option{p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
		}
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, hop := e.net.Host(1).Libp2p(), e.net.Host(2).Libp2p()
	head.Peerstore().AddAddrs(hop.ID(), hop.Addrs(), peerstore.PermanentAddrTTL)
	if err := head.Network().ClosePeer(hop.ID()); err != nil {
		t.Fatal(err)
	}
	if head.Network().Connectedness(hop.ID()) == network.Connected {
		t.Fatal("the head is still connected to the hop")
	}
	port, received := countingUDP(t)
	data := spRand(62, 100<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	c := spPush(t, res, data, 1, 0)
	c.Forward = []store.Hop{{Peer: hop.ID(), Addrs: mustAddrs(t, fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))}}
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if signed := checkReceipts(t, res, 0, r); len(signed) != 2 || !signed[hop.ID()] {
		t.Fatalf("receipts %v, failed %v; want the hop's", r.Receipts, r.Failed)
	}
	if n := received.Load(); n != 0 {
		t.Fatalf("the head dialled the forward list's address of a hop it knew: %d datagrams", n)
	}
}
