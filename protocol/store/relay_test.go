package store

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// sinkPeers starts n hosts after host 0 that accept store streams and keep
// them until the test resets them; it returns the network and the streams
// each peer accepted.
func sinkPeers(t *testing.T, n int) (*testnet.Network, func(peer.ID) []network.Stream) {
	net := testnet.New(t, n+1)
	var mu sync.Mutex
	accepted := map[peer.ID][]network.Stream{}
	for i := 1; i <= n; i++ {
		h := net.Host(i).Libp2p()
		h.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
			mu.Lock()
			accepted[h.ID()] = append(accepted[h.ID()], s)
			mu.Unlock()
			_, _ = io.Copy(io.Discard, s)
			_ = s.Close()
		})
	}
	return net, func(p peer.ID) []network.Stream {
		mu.Lock()
		defer mu.Unlock()
		return append([]network.Stream(nil), accepted[p]...)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

// ended waits for s's reader to end: the stream was closed or reset.
func ended(t *testing.T, what string, s *Stream) {
	t.Helper()
	select {
	case <-s.readerDone:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting until %s", what)
	}
}

func TestRelayStreamsBounded(t *testing.T) {
	const peers, bound = 7, 3
	net, _ := sinkPeers(t, peers)
	r := NewRelay(net.Host(0).Libp2p())
	t.Cleanup(func() { _ = r.Close() })
	r.max = bound
	ctx := context.Background()
	var opened []*Stream
	for i := 1; i <= peers; i++ {
		s, fresh, err := r.stream(ctx, Hop{Peer: net.Host(i).ID()})
		if err != nil || !fresh {
			t.Fatalf("stream to peer %d: fresh %v, %v", i, fresh, err)
		}
		opened = append(opened, s)
		if n := r.Streams(); n > bound {
			t.Fatalf("%d streams open after %d peers; want at most %d", n, i, bound)
		}
	}
	// The least recently used were closed; the newest are still held.
	for _, s := range opened[:peers-bound] {
		ended(t, "an evicted stream is closed", s)
	}
	for i := peers - bound + 1; i <= peers; i++ {
		if _, fresh, err := r.stream(ctx, Hop{Peer: net.Host(i).ID()}); err != nil || fresh {
			t.Fatalf("stream to recent peer %d: fresh %v, %v; want the held one", i, fresh, err)
		}
	}
}

func TestRelayDropsEndedAndIdleStreams(t *testing.T) {
	net, accepted := sinkPeers(t, 2)
	r := NewRelay(net.Host(0).Libp2p())
	t.Cleanup(func() { _ = r.Close() })
	var mu sync.Mutex
	now := time.Now()
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	p1, p2 := net.Host(1).ID(), net.Host(2).ID()
	if _, _, err := r.stream(ctx, Hop{Peer: p1}); err != nil {
		t.Fatal(err)
	}
	// The hop resets the stream: the relay lets go of it.
	waitFor(t, "peer 1 accepted the stream", func() bool { return len(accepted(p1)) == 1 })
	_ = accepted(p1)[0].Reset()
	waitFor(t, "the ended stream left the relay", func() bool { return r.Streams() == 0 })

	s2, _, err := r.stream(ctx, Hop{Peer: p2})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(RelayIdleTimeout + time.Second)
	mu.Unlock()
	// Opening another stream closes the idle one.
	if _, _, err := r.stream(ctx, Hop{Peer: p1}); err != nil {
		t.Fatal(err)
	}
	if n := r.Streams(); n != 1 {
		t.Fatalf("%d streams held after peer 2's went idle; want 1", n)
	}
	ended(t, "the idle stream is closed", s2)
}

// TestRelayStopReportsNoHop: a forward cut short by its own provider (its
// context ends otherwise than at the forward deadline: the provider is
// stopping or its uploader left) reports no failure for the hop it was
// pushing to or those after it — they were not at fault, and the uploader
// sees them not forwarded — while a forward past its deadline names them
// failed.
func TestRelayStopReportsNoHop(t *testing.T) {
	net, accepted := sinkPeers(t, 2)
	r := NewRelay(net.Host(0).Libp2p())
	t.Cleanup(func() { _ = r.Close() })
	p1, p2 := net.Host(1).ID(), net.Host(2).ID()
	data := []byte("a chunk forwarded to hops that never answer")
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	push := ChunkPush{Bag: "dynamic:channel:1", Object: 1, CID: cid.NewCidV1(cid.Raw, mh), Data: data}
	hops := []Hop{{Peer: p1}, {Peer: p2}}

	// Stopping once the first hop holds the push.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for end := time.After(10 * time.Second); len(accepted(p1)) == 0; {
			select {
			case <-end:
				return
			case <-tick.C:
			}
		}
	}()
	receipts, failures := r.forward(ctx, push, hops, slog.New(slog.DiscardHandler))
	if len(accepted(p1)) == 0 {
		t.Fatal("the first hop never received the push")
	}
	if len(receipts) != 0 || len(failures) != 0 {
		t.Fatalf("stopped forward: receipts %v, failures %v; want none", receipts, failures)
	}

	// Past the deadline: the hop pushed to and the hop not tried, failed.
	dctx, dcancel := context.WithTimeoutCause(context.Background(), 300*time.Millisecond, errForwardDeadline)
	defer dcancel()
	receipts, failures = r.forward(dctx, push, hops, slog.New(slog.DiscardHandler))
	if len(receipts) != 0 || len(failures) != 2 ||
		peer.ID(failures[0].Peer) != p1 || peer.ID(failures[1].Peer) != p2 ||
		!strings.Contains(failures[1].Reason, "not tried") {
		t.Fatalf("forward past its deadline: receipts %v, failures %v; want both hops failed", receipts, failures)
	}
}

// TestForwardAddrsRule: a provider dials a forward list's address only when
// the DHT's rule (p2p.DialableAddr) keeps it, it names an IP, and any /p2p
// it ends in names the hop; loopback and private addresses are kept.
func TestForwardAddrsRule(t *testing.T) {
	hop, err := peer.Decode("12D3KooWQjpBq3GDFPRpN5EVTz2F3FPbEYKzM5E29kRDQ9FaHdbQ")
	if err != nil {
		t.Fatal(err)
	}
	other, err := peer.Decode("12D3KooWJQYxWvoM2f5ZW3fdk1orD9kmW3ZoXWvVz8hv4TfsrZYW")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want string // "" when dropped
	}{
		{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001"},
		{"/ip4/10.1.2.3/udp/4001/quic-v1", "/ip4/10.1.2.3/udp/4001/quic-v1"},
		{"/ip6/::1/tcp/4001", "/ip6/::1/tcp/4001"},
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + hop.String(), "/ip4/127.0.0.1/tcp/4001"},
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + other.String(), ""},
		{"/ip4/0.0.0.0/tcp/4001", ""},
		{"/ip6/::/tcp/4001", ""},
		{"/dns4/localhost/tcp/4001", ""},
		{"/dns/provider.example/tcp/4001", ""},
		{"/unix/tmp/socket", ""},
	} {
		a, err := ma.NewMultiaddr(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		got := forwardAddrs(Hop{Peer: hop, Addrs: []ma.Multiaddr{a}})
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s kept as %v; want it dropped", tc.addr, got)
		case tc.want != "" && (len(got) != 1 || got[0].String() != tc.want):
			t.Errorf("%s gave %v; want %s", tc.addr, got, tc.want)
		}
	}
}
