package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// policy serves every block except those blocked, and panics on the one
// named boom (a fault no real policy can be made to cause on purpose).
type policy struct {
	blocked sync.Map
	boom    atomic.Pointer[cid.Cid]
}

func (p *policy) Serves(_ context.Context, c cid.Cid) bool {
	if b := p.boom.Load(); b != nil && b.Equals(c) {
		panic("policy bug")
	}
	_, no := p.blocked.Load(c)
	return !no
}

// env is a provider (host 1) with a real block store and the fetch handler,
// and a reader (host 0) with a Client.
type env struct {
	reader, server host.Host
	net            *testnet.Network
	bs             *blockstore.Store
	policy         *policy
	reg            *prometheus.Registry
	p2pReg         *prometheus.Registry // the hosts' framework metrics
	corrupt        chan cid.Cid
	fetch          *fetch.Client
	handler        *fetch.Handler
}

func newEnv(t testing.TB) *env {
	t.Helper()
	p2pReg := prometheus.NewRegistry()
	net := testnet.New(t, 2, testnet.WithHostOptions(func(int) []p2p.Option {
		return []p2p.Option{p2p.WithMetrics(p2pReg)}
	}))
	e := &env{
		net:     net,
		p2pReg:  p2pReg,
		reader:  net.Host(0).Libp2p(),
		server:  net.Host(1).Libp2p(),
		policy:  &policy{},
		reg:     prometheus.NewRegistry(),
		corrupt: make(chan cid.Cid, 16),
	}
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	e.bs = bs
	e.handler = fetch.NewHandler(bs.ForProtocols(), e.policy,
		fetch.WithMetrics(e.reg), fetch.WithLogger(slog.New(slog.DiscardHandler)),
		fetch.WithCorruptBlock(func(c cid.Cid) { e.corrupt <- c }))
	e.handler.Register(net.Host(1).Protocol())
	e.fetch = fetch.NewClient(e.reader)
	t.Cleanup(func() {
		_ = e.fetch.Close()
		_ = e.handler.Close()
		_ = bs.Close()
	})
	return e
}

// counter reads a counter of reg by name and label pairs.
func counter(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, err := metricsutil.Counter(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFetchNotServedAndCorrupt(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := benchutil.Rand(8, 200<<10)
	c := chunker.ChunkCID(data)
	if err := e.bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	absent := chunker.ChunkCID([]byte("absent"))
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), absent); !errors.Is(err, fetch.ErrNotServed) {
		t.Fatalf("GetBlock of a block not held: %v", err)
	}
	e.policy.blocked.Store(c, true)
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), c); !errors.Is(err, fetch.ErrNotServed) {
		t.Fatalf("GetBlock of a block not served: %v", err)
	}
	if have, err := e.fetch.Have(ctx, e.server.ID(), []cid.Cid{c, absent}); err != nil || have[0] || have[1] {
		t.Fatalf("Have = %v, %v", have, err)
	}
	e.policy.blocked.Delete(c)
	if have, err := e.fetch.Have(ctx, e.server.ID(), []cid.Cid{c, absent}); err != nil || !have[0] || have[1] {
		t.Fatalf("Have = %v, %v", have, err)
	}

	// Corrupt the block's bytes where the store keeps them.
	bad := bytes.Clone(data)
	bad[12345] ^= 0x40
	overwriteBlock(t, e, c, bad)
	_, err := e.fetch.GetBlock(ctx, e.server.ID(), c)
	if !errors.Is(err, fetch.ErrBlockFailed) {
		t.Fatalf("GetBlock of a corrupt block: %v", err)
	}
	select {
	case got := <-e.corrupt:
		if !got.Equals(c) {
			t.Fatalf("WithCorruptBlock(%s)", got)
		}
	case <-ctx.Done():
		t.Fatal("WithCorruptBlock not called")
	}
	q, _ := e.bs.Quarantined()
	if len(q) != 1 || !q[0].Equals(c) {
		t.Fatalf("Quarantined = %v", q)
	}
	if _, err := e.bs.Get(c); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("store Get after quarantine: %v", err)
	}
	if n := counter(t, e.reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "failed"); n != 1 {
		t.Fatalf("failed gets metric = %v", n)
	}
	if n := counter(t, e.reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "not_found"); n != 2 {
		t.Fatalf("not_found gets metric = %v", n)
	}
}

// spLiar serves a fetch stream answering every GET with the wrong bytes.
func TestFetchLyingPeer(t *testing.T) {
	net := testnet.New(t, 2)
	liar := net.Host(1).Libp2p()
	liar.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
		defer s.Close()
		for {
			var req pb.FetchRequest
			if err := p2p.ReadMsg(s, &req, 0); err != nil {
				return
			}
			junk := []byte("not what you asked for")
			_ = p2p.WriteMsg(s, &pb.FetchReply{Id: req.Id, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: junk, Size: uint64(len(junk))})
		}
	})
	f := fetch.NewClient(net.Host(0).Libp2p())
	defer f.Close()
	_, err := f.GetBlock(context.Background(), liar.ID(), chunker.ChunkCID([]byte("the real block")))
	if !errors.Is(err, fetch.ErrCIDMismatch) || !errors.Is(err, blockstore.ErrCIDMismatch) {
		t.Fatalf("GetBlock from a liar: %v, want ErrCIDMismatch", err)
	}
}

// A provider announcing a block over MaxBlockSize is refused at its first
// reply, before GetBlock buffers more of it.
func TestFetchOversizedBlockRefused(t *testing.T) {
	net := testnet.New(t, 2)
	liar := net.Host(1).Libp2p()
	var gets atomic.Int32
	liar.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
		defer s.Close()
		junk := make([]byte, fetch.MaxGetBytes)
		for {
			var req pb.FetchRequest
			if err := p2p.ReadMsg(s, &req, 0); err != nil {
				return
			}
			gets.Add(1)
			_ = p2p.WriteMsg(s, &pb.FetchReply{Id: req.Id, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: junk, Size: 1 << 62})
		}
	})
	f := fetch.NewClient(net.Host(0).Libp2p())
	defer f.Close()
	_, err := f.GetBlock(context.Background(), liar.ID(), chunker.ChunkCID([]byte("the real block")))
	if !errors.Is(err, fetch.ErrBlockTooLarge) || !errors.Is(err, store.ErrProtocol) {
		t.Fatalf("GetBlock of an oversized block: %v, want ErrBlockTooLarge", err)
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("GetBlock sent %d GETs, want 1", n)
	}
}

// A panic while answering a request is contained by the stream framework:
// the request is answered FAILED, the panic is counted under the fetch
// protocol, and the same stream and handler go on serving.
func TestHandlerPanicContained(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good, bad := []byte("a block that is served"), []byte("a block whose policy panics")
	gc, bc := chunker.ChunkCID(good), chunker.ChunkCID(bad)
	for c, b := range map[cid.Cid][]byte{gc: good, bc: bad} {
		if err := e.bs.Put(c, b); err != nil {
			t.Fatal(err)
		}
	}
	e.policy.boom.Store(&bc)
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), bc); !errors.Is(err, fetch.ErrBlockFailed) {
		t.Fatalf("GetBlock through a panicking policy: %v, want ErrBlockFailed", err)
	}
	if n := counter(t, e.p2pReg, "satchel_p2p_handler_failures_total", "protocol", string(p2p.FetchProtocol), "kind", "panic"); n != 1 {
		t.Fatalf("panics counted for the fetch protocol = %v, want 1", n)
	}
	got, err := e.fetch.GetBlock(ctx, e.server.ID(), gc)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("GetBlock after a contained panic: %q, %v", got, err)
	}
}

// TestReadBlockVerified: a Block ReadBlock returns says Verified (its
// bytes matched the CID), and Release clears the mark with the bytes — what a distributor relies on to skip
// a second hash only for bytes this client checked.
func TestReadBlockVerified(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, size := range []int{200 << 10, 1 << 20} {
		data := benchutil.Rand(uint64(size), size)
		c := chunker.ChunkCID(data)
		if err := e.bs.Put(c, data); err != nil {
			t.Fatal(err)
		}
		b, err := e.fetch.ReadBlock(ctx, e.server.ID(), c)
		if err != nil || !bytes.Equal(b.Data, data) || !b.Verified() {
			t.Fatalf("ReadBlock of %d bytes: %d bytes, verified %v, %v", size, len(b.Data), b.Verified(), err)
		}
		b.Release()
		if b.Verified() || b.Data != nil {
			t.Fatalf("a released Block still says verified (%v) or holds %d bytes", b.Verified(), len(b.Data))
		}
	}
}
