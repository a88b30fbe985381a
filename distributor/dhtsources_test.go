package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/p2p"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// attempt is one fetch attempt a recordingSource saw: the peer asked and
// the time its context left it.
type attempt struct {
	p      peer.ID
	budget time.Duration
}

func (a attempt) String() string {
	return fmt.Sprintf("%s (%s)", a.p, a.budget.Round(time.Millisecond))
}

// recordingSource records every fetch attempt in order. With failOps set,
// the attempts at the operators fail at once (a fault of theirs a real
// provider cannot be made to show on cue); with quick set, an attempt at a
// peer in quick fails at once instead of waiting out its deadline, as a
// stalling peer would (the deadline it had is what is recorded).
type recordingSource struct {
	distributor.BlockSource
	ops     map[peer.ID]bool
	quick   map[peer.ID]bool
	failOps atomic.Bool

	mu    sync.Mutex
	tries []attempt
}

func (s *recordingSource) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error) {
	dl, _ := ctx.Deadline()
	s.mu.Lock()
	s.tries = append(s.tries, attempt{p, time.Until(dl)})
	s.mu.Unlock()
	switch {
	case s.ops[p] && s.failOps.Load():
		return fetch.Block{}, errors.New("operator fault injected")
	case s.quick[p] && s.failOps.Load():
		return fetch.Block{}, errors.New("stalled until its deadline")
	}
	return s.BlockSource.ReadBlock(ctx, p, c)
}

// since returns the attempts from the n-th on.
func (s *recordingSource) since(n int) []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tries[n:])
}

func (s *recordingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tries)
}

// stallingPeers starts n bare hosts that announce the bag key of e's bag
// to every provider (fresh peer IDs: ADD_PROVIDER costs nothing) and
// accept fetch streams they never answer.
func stallingPeers(t *testing.T, e *env, n int) map[peer.ID]bool {
	t.Helper()
	keys := [][]byte{p2p.BagKey(string(e.net.Bag)).Hash()}
	out := map[peer.ID]bool{}
	for range n {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		h.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
			<-e.ctx.Done() // read nothing, answer nothing
			_ = s.Reset()
		})
		for _, p := range e.net.Providers() {
			if err := h.Connect(e.ctx, p.AddrInfo()); err != nil {
				t.Fatal(err)
			}
			p2ptestnet.AnnounceProviders(e.ctx, t, h, p.AddrInfo().ID, keys)
		}
		out[h.ID()] = true
	}
	return out
}

// A bag key announced on the DHT by many fresh peer IDs that serve
// nothing does not stall a miss: the chain's operators of the bag are
// asked first, measured or not, and serve it without one announced peer
// asked. When every operator fails, at most MaxDHTSources announced
// peers are asked per lookup, each for at most DHTFetchTimeout; the
// status lists only the peers asked.
func TestDHTFloodDoesNotStallMisses(t *testing.T) {
	e := newEnv(t, 2)
	data := make([][]byte, 3)
	urls := make([]string, 3)
	objs := make([]string, 3)
	for i := range data {
		data[i] = randomBytes(t, 20<<10)
		objs[i] = e.put(t, data[i], 8<<10, 0, 1).ID.String()
	}
	fakes := stallingPeers(t, e, 2*distributor.MaxDHTSources+5)
	client, err := e.net.ClientHost(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found, err := client.FindProviders(e.ctx, p2p.BagKey(string(e.net.Bag)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countFunc(found, func(ai peer.AddrInfo) bool { return fakes[ai.ID] }); n <= distributor.MaxDHTSources {
		t.Fatalf("the DHT names %d of the %d announcing peers: the test's premise fails", n, len(fakes))
	}

	ops := map[peer.ID]bool{}
	for _, p := range e.net.Providers() {
		ops[p.AddrInfo().ID] = true
	}
	rs := &recordingSource{ops: ops, quick: fakes}
	srv := e.ownDistributor(t, func(fc *fetch.Client) distributor.BlockSource { rs.BlockSource = fc; return rs })
	for i := range urls {
		urls[i] = srv.URL() + "/api/v1/assets/" + objs[i]
	}

	// The first miss measures the operators; the second finds them
	// measured and the announced peers (looked up meanwhile) not.
	for i := range 2 {
		if i == 1 {
			lookUpFakes(t, e, srv, ops, fakes)
		}
		resp, body := get(t, urls[i])
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data[i]) || resp.Header.Get("X-Cache") != "miss" {
			t.Fatalf("GET object %s: %d %s, %d bytes", objs[i], resp.StatusCode, resp.Header.Get("X-Cache"), len(body))
		}
	}
	tries := rs.since(0)
	if len(tries) == 0 {
		t.Fatal("two misses asked no provider")
	}
	for _, a := range tries {
		if !ops[a.p] {
			t.Fatalf("a miss asked %s, a peer only the DHT names, while the bag's operators serve: %v", a.p, tries)
		}
	}

	// Every operator fails: the announced peers are asked, capped, with
	// the short timeout.
	rs.failOps.Store(true)
	n := rs.count()
	if resp, body := get(t, urls[2]); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET object %s while every operator fails: %d %s; want 503", objs[2], resp.StatusCode, body)
	}
	tries = rs.since(n)
	if len(tries) == 0 || !ops[tries[0].p] {
		t.Fatalf("while every operator fails the first peer asked is not an operator: %v", tries)
	}
	asked := map[peer.ID]bool{}
	for _, a := range tries {
		switch {
		case fakes[a.p]:
			asked[a.p] = true
			if a.budget > distributor.DHTFetchTimeout {
				t.Errorf("announced peer %s asked with %s to answer; want at most %s", a.p, a.budget, distributor.DHTFetchTimeout)
			}
		case a.budget <= distributor.DHTFetchTimeout:
			t.Errorf("operator %s asked with %s to answer; want the fetch timeout", a.p, a.budget)
		}
	}
	fakeTries := countFunc(tries, func(a attempt) bool { return fakes[a.p] })
	if len(asked) == 0 || fakeTries > 2*distributor.MaxDHTSources {
		t.Fatalf("one fetch (two lookups) asked %d announced peers %d times; want some, at most %d times", len(asked), fakeTries, 2*distributor.MaxDHTSources)
	}
	for _, st := range srv.Status().Sources {
		id, err := peer.Decode(st.Peer)
		if err != nil || !ops[id] && !asked[id] {
			t.Fatalf("the status lists %s, a peer never asked", st.Peer)
		}
	}
	if t.Failed() {
		t.Log(tries)
	}
}

func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// lookUpFakes waits until srv's look-up of the bag's providers names
// announced peers besides its operators, at most MaxDHTSources.
func lookUpFakes(t *testing.T, e *env, srv *distributor.Server, ops, fakes map[peer.ID]bool) {
	t.Helper()
	testnet.Wait(t, "the node's DHT look-up to name announcing peers", func() bool {
		onChain, dhtOnly, err := srv.LookUpSources(e.ctx, e.net.Bag)
		if err != nil {
			t.Fatal(err)
		}
		if len(onChain) != len(ops) || len(dhtOnly) > distributor.MaxDHTSources {
			t.Fatalf("the node's look-up names %d operators (want %d) and %d other peers (want at most %d)", len(onChain), len(ops), len(dhtOnly), distributor.MaxDHTSources)
		}
		return countFunc(dhtOnly, func(p peer.ID) bool { return fakes[p] }) > 0
	})
}
