package fetch_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
	satnet "github.com/satchel-net/satchel/testnet"
)

// countingBlocks counts the bytes the handler reads from the block store.
type countingBlocks struct {
	fetch.Blocks
	read atomic.Int64
}

func (b *countingBlocks) Get(c cid.Cid) ([]byte, error) {
	data, err := b.Blocks.Get(c)

	b.read.Add(int64(len(data)))
	return data, err
}

// cycler is a peer's attack stream: it opens a fetch stream, asks for
// every block and reads nothing, resets the stream after hold (just
// before the stall age) and opens the next, until ctx ends.
// It counts in got what the provider had sent it when it reset.
func cycler(ctx context.Context, net *testnet.Network, from int, cids []cid.Cid, hold time.Duration, cycles, got *atomic.Int64) {
	for ctx.Err() == nil {
		s, err := net.Host(from).Libp2p().NewStream(ctx, net.Host(0).ID(), p2p.FetchProtocol)
		if err != nil { // the old stream not yet gone, say: try again soon
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		fw := p2p.NewFrameWriter(s)
		for i, c := range cids {
			_ = fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}})
		}
		_ = fw.Flush()
		select {
		case <-time.After(hold):
		case <-ctx.Done():
		}
		// What has arrived is what the provider sent: read at most the
		// stream's first window of it, as every byte read opens the
		// window again (unbounded, a quick drain on an idle machine took
		// in whole replies, and the attacker owed nothing).
		_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, _ := io.Copy(io.Discard, io.LimitReader(s, 256<<10))
		got.Add(n)
		_ = s.Reset()
		cycles.Add(1)
	}
}

// pacedReader reads at most 256 KiB a tick.
type pacedReader struct {
	r    io.Reader
	tick *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	<-p.tick.C
	return p.r.Read(b[:min(len(b), 256<<10)])
}

// slowReader asks for cids on a stream of its own and reads the replies at
// about 5 MB/s (256 KiB every 50 ms), so its writes block on every reply:
// each 1 MiB reply drains in about 0.2 s, within the stall age with room
// for a loaded machine's late ticks (at 64 KiB a tick, 0.8 s, a CPU shared
// with other tests' stretched it past 1.5 s), as an honest slow reader's
// do. It returns nil once every reply came OK.
func slowReader(ctx context.Context, net *testnet.Network, from int, cids []cid.Cid) error {
	s, err := net.Host(from).Libp2p().NewStream(ctx, net.Host(0).ID(), p2p.FetchProtocol)
	if err != nil {
		return err
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	fw := p2p.NewFrameWriter(s)
	for i, c := range cids {
		_ = fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}})
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	r := bufio.NewReaderSize(&pacedReader{r: s, tick: tick}, 256<<10)
	for i := range cids {
		var rep pb.FetchReply
		if err := p2p.ReadMsg(r, &rep, fetch.MaxFrame); err != nil {
			return fmt.Errorf("reply %d: %w", i+1, err)
		}
		if rep.Status != pb.FetchStatus_FETCH_STATUS_OK {
			return fmt.Errorf("reply %d: %v (%s)", i+1, rep.Status, rep.Reason)
		}
	}
	return nil
}

// cycleResult is what an honest reader saw while peers cycled stalled
// streams, and what the attackers cost the provider.
type cycleResult struct {
	served, busy int
	evicted      float64 // attackers' streams reset to make room
	attackRead   int64   // block bytes the provider read for the attackers (not the honest readers)
	attackGot    int64   // bytes the attackers were sent
}

// cyclingAttack runs four peers, each with four fetch streams that ask for
// 1 MiB blocks, read nothing and reset each stream at 80% of the stall age
// to open another at once (staggered, so their resets free little at a
// time), against a provider whose fetch budget holds half what they ask
// for and whose abandonment budget is budget's. Once every stream
// has cycled twice, an honest reader GETs blocks for two more cycles,
// none of which may be refused busy, and a slow reader (within the stall
// age) reads four blocks, none of which may fail.
func cyclingAttack(t *testing.T, budget fetch.Option) cycleResult {
	const (
		attackers      = 4
		streamsPerPeer = 4
		stall          = 1500 * time.Millisecond
		hold           = stall * 8 / 10
	)
	held := int64(fetch.MaxHeldGETs) * fetch.GetMemory
	peerShare := streamsPerPeer * held
	limits := p2p.MemoryLimits{
		Protocol:            attackers/2*peerShare + fetch.GetMemory/2, // half of what they ask
		FetchPeer:           peerShare + fetch.GetMemory/2,
		ProtocolPeerStreams: streamsPerPeer,
	}
	net := testnet.New(t, attackers+3, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 { // TCP, whose yamux streams start with a 256 KiB window
			return []p2p.Option{p2p.WithMemoryLimits(limits), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
		}
		return nil
	}))
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	blocks := &countingBlocks{Blocks: bs.ForProtocols()}
	reg := prometheus.NewRegistry()
	h := fetch.NewHandler(blocks, &policy{}, fetch.WithMetrics(reg), fetch.WithLogger(slog.New(slog.DiscardHandler)),
		fetch.WithStallEviction(stall), budget,
		fetch.WithAbandonAddrShare(1<<20)) // the peers' own budgets are tested: on loopback all share one address
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() {
		_ = h.Close()
		_ = bs.Close()
	})
	cids := make([]cid.Cid, fetch.MaxInFlight)
	for i := range cids {
		data := benchutil.Rand(uint64(700+i), 1<<20)
		cids[i] = chunker.ChunkCID(data)
		if err := bs.Put(cids[i], data); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attack, stop := context.WithCancel(ctx)
	var cycles, got atomic.Int64
	var wg sync.WaitGroup
	for p := 1; p <= attackers; p++ {
		for i := range streamsPerPeer {
			start := hold * time.Duration(i*attackers+p) / time.Duration(attackers*streamsPerPeer) // staggered
			wg.Go(func() {
				select {
				case <-time.After(start):
				case <-attack.Done():
				}
				cycler(attack, net, p, cids, hold, &cycles, &got)
			})
		}
	}
	// Two full cycles of every stream: each has reset streams with replies
	// unsent, and holds its share again.
	streams := int64(attackers * streamsPerPeer)
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for cycles.Load() < 2*streams {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for the attackers' cycles (%d)", cycles.Load())
		case <-tick.C:
		}
	}
	readBefore, gotBefore := blocks.read.Load(), got.Load()
	evictedBefore := counter(t, reg, "satchel_provider_fetch_streams_evicted_total")

	// The honest readers, while the attack goes on for two more cycles: a
	// slow one on a stream of its own, and a Client.
	slow := make(chan error, 1)
	go func() { slow <- slowReader(ctx, net, attackers+1, cids[:4]) }()
	f := fetch.NewClient(net.Host(attackers + 2).Libp2p())
	defer f.Close()
	served, busy := 0, 0
	for cycles.Load() < 4*streams {
		for _, c := range cids {
			_, err := f.GetBlock(ctx, net.Host(0).ID(), c)
			switch {
			case err == nil:
				served++
			case errors.Is(err, fetch.ErrProviderBusy):
				busy++
			default:
				t.Fatalf("honest GetBlock: %v", err)
			}
		}
	}
	if err := <-slow; err != nil {
		t.Errorf("slow honest reader: %v", err)
	}
	stop()
	wg.Wait()
	r := cycleResult{served: served, busy: busy,
		evicted:    counter(t, reg, "satchel_provider_fetch_streams_evicted_total") - evictedBefore,
		attackRead: blocks.read.Load() - readBefore - int64(served+4)<<20, attackGot: got.Load() - gotBefore}
	t.Logf("honest GETs: %d served, %d refused busy; attackers' streams reset: %v; while they read, the attackers made the provider read %.1f MiB and were sent %.1f MiB",
		r.served, r.busy, r.evicted, float64(r.attackRead)/(1<<20), float64(r.attackGot)/(1<<20))
	if r.busy > 0 {
		t.Errorf("%d of %d honest GETs refused busy while %d peers cycled stalled streams", r.busy, r.busy+r.served, attackers)
	}
	return r
}

// Peers that open fetch streams, ask for big blocks, read nothing and
// reset each stream just before its stall age, then open another, cannot
// keep an honest reader out, nor go on making the provider read blocks
// for nothing: their resets leave replies unsent, charged to each peer's
// abandonment budget, and once that is spent their GETs are refused
// before anything is read. Without it the honest readers were refused
// busy (4209 of 4256 GETs, and the slow reader's first) and the attackers
// made the provider read 33 MiB meanwhile, 2.5 times what they were sent.
func TestFetchCyclingStallersCannotHoldBudget(t *testing.T) {
	// Spent by each peer's first cycle, and never refilled: what the
	// attackers make the provider read is bounded by the burst alone.
	const burst = 4 << 20
	r := cyclingAttack(t, fetch.WithAbandonBudgetNoRefill(burst))
	if bound := int64(4 * burst); r.attackRead > bound {
		t.Fatalf("attackers made the provider read %d MiB while the honest readers read, want at most their budgets' %d MiB", r.attackRead>>20, bound>>20)
	}
}

// A peer that abandoned replies lately but is still within its budget has
// its GETs served, and its streams whose writes are blocked count as
// stalled whatever their age: an honest GET that finds the shared budget
// spent resets them first, long before the stall age.
func TestFetchAbandonersStreamsResetFirst(t *testing.T) {
	r := cyclingAttack(t, fetch.WithAbandonBudget(1, 1<<40)) // never spent, and owing after a reset
	if r.evicted < 1 {
		t.Fatalf("%v attackers' streams reset; the honest reads were served without making room", r.evicted)
	}
}

// A peer whose abandonment budget is spent is refused busy: the budget
// refills in seconds, and an honest reader that
// was charged (it closed streams with replies in flight) waits and asks
// again rather than dropping the provider.
func TestSpentAbandonerRefusedBusy(t *testing.T) {
	net := testnet.New(t, 2)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	blocks := &countingBlocks{Blocks: bs.ForProtocols()}
	h := fetch.NewHandler(blocks, &policy{}, fetch.WithLogger(slog.New(slog.DiscardHandler)), fetch.WithAbandonBudget(1, 1<<20))
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() { _ = h.Close(); _ = bs.Close() })
	data := benchutil.Rand(801, 1<<20)
	c := chunker.ChunkCID(data)
	if err := bs.Put(c, data); err != nil {
		t.Fatal(err)
	}

	abandonUntilRefused(t, net.Host(1).Libp2p(), net.Host(0).ID(), c)
}

// abandonUntilRefused has from abandon replies to the provider to until
// its GETs of c are refused busy: it asks for c twice on a stream of its
// own, reads (almost) nothing and resets the stream once the provider
// answers.
func abandonUntilRefused(t *testing.T, from host.Host, to peer.ID, c cid.Cid) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := fetch.NewClient(from)
	defer f.Close()
	satnet.Wait(t, "the peer's budget spent by streams reset unread", func() bool {
		// (That the refusal reads nothing is TestFetchCyclingStallersCannotHoldBudget's:
		// here a reset stream's second reply may still be read meanwhile.)
		if _, err := f.GetBlock(ctx, to, c); errors.Is(err, fetch.ErrProviderBusy) {
			return true
		}
		s, err := from.NewStream(ctx, to, p2p.FetchProtocol)
		if err != nil {
			t.Fatal(err)
		}
		fw := p2p.NewFrameWriter(s)
		for i := range 2 {
			_ = fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}})
		}
		_ = fw.Flush()
		// The first reply's first byte: the provider has answered (a block
		// it read, or a refusal once the charge landed).
		_ = s.SetReadDeadline(time.Now().Add(satnet.WaitTimeout))
		_, _ = s.Read(make([]byte, 1))
		_ = s.Reset()
		return false
	})
}

// Peer IDs are free, but addresses are not: peers at one address share an
// abandonment budget of a few peers' (WithAbandonAddrShare), so a reader
// that takes a fresh peer ID once each has spent its own budget is still
// refused once the address's is spent. Here three peer IDs at 127.0.0.1
// spend theirs, and a fourth, never charged, is refused busy.
func TestAbandonersShareAddressBudget(t *testing.T) {
	const ids = 3
	net := testnet.New(t, ids+2)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := fetch.NewHandler(bs.ForProtocols(), &policy{}, fetch.WithLogger(slog.New(slog.DiscardHandler)),
		fetch.WithAbandonBudgetNoRefill(1<<20), fetch.WithAbandonAddrShare(ids))
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() { _ = h.Close(); _ = bs.Close() })
	data := benchutil.Rand(802, 1<<20)
	c := chunker.ChunkCID(data)
	if err := bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	for from := 1; from <= ids; from++ {
		abandonUntilRefused(t, net.Host(from).Libp2p(), net.Host(0).ID(), c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := fetch.NewClient(net.Host(ids + 1).Libp2p())
	defer f.Close()
	if _, err := f.GetBlock(ctx, net.Host(0).ID(), c); !errors.Is(err, fetch.ErrProviderBusy) {
		t.Fatalf("a fresh peer ID at the address of %d spent ones: %v, want refused busy", ids, err)
	}
}

// Whoever routes an IPv6 /32 has 65,536 /48s, each with a budget of its
// own, but the /48s of a /32 share the /32's (WithAbandonNetShare): peers
// in fresh /48s of one /32, each abandoning replies until refused, find
// a fresh /48 refused once the /32's budget is spent, within its share of
// /48s, while a peer in another /32 is served. The peers are mocknet
// hosts at IPv6 addresses, so the handler takes their blocks from their
// connections as it does a real peer's.
func TestAbandonersShareNetworkBudget(t *testing.T) {
	spendNetwork(t, 803, func(i int) string { return fmt.Sprintf("2001:db8:%x::1", i+1) }, "2001:db9:1::1", "/48", "/32")
}

// IPv4 addresses are cheap by the /24 (256 of them): the addresses of one
// /24 share an abandonment budget of an IPv6 /32's, so a reader that
// takes a fresh address once each has spent its own budget is refused
// once its /24's is spent, and a peer in another /24 is still served.
// Here each address's budget is a peer's, the /24's two of them.
func TestAbandonersShareIPv4NetBudget(t *testing.T) {
	spendNetwork(t, 804, func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, "198.51.100.1", "address", "/24")
}

// spendNetwork serves one block from a provider whose network tier holds
// 2 of its narrower blocks' budgets (each a peer's, never refilled): peers
// at addrOf(0), addrOf(1), … each abandon replies until refused, until a
// fresh one is refused at once; that must come after at least one and at
// most 2 narrower blocks spent their budgets, and a peer at other, in
// another network, must still be served. narrow and wide name the blocks
// for failures.
func spendNetwork(t *testing.T, seed uint64, addrOf func(int) string, other, narrow, wide string) {
	t.Helper()
	const share = 2
	net := testnet.NewMock(t, 1, 0)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := fetch.NewHandler(bs.ForProtocols(), &policy{}, fetch.WithLogger(slog.New(slog.DiscardHandler)),
		fetch.WithAbandonBudgetNoRefill(1<<20), fetch.WithAbandonAddrShare(1), fetch.WithAbandonWideShare(1),
		fetch.WithAbandonNetShare(share))
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() { _ = h.Close(); _ = bs.Close() })
	data := benchutil.Rand(seed, 1<<20)
	c := chunker.ChunkCID(data)
	if err := bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	provider := net.Host(0).ID()
	spent := 0 // the narrower blocks that spent their budgets before a fresh one was refused
	for ; ; spent++ {
		p := peerAt(t, net, addrOf(spent))
		if _, err := fetch.NewClient(p).GetBlock(ctx, provider, c); errors.Is(err, fetch.ErrProviderBusy) {
			break
		} else if err != nil {
			t.Fatalf("a peer in a fresh %s: %v", narrow, err)
		}
		if spent == share {
			t.Fatalf("%d %ss of one %s spent their budgets, and a fresh one still has one: the %s's share is %d", spent+1, narrow, wide, wide, share)
		}
		abandonUntilRefused(t, p, provider, c)
	}
	if spent == 0 {
		t.Fatalf("a fresh %s refused before any abandoned a reply", narrow)
	}
	o := peerAt(t, net, other)
	if _, err := fetch.NewClient(o).GetBlock(ctx, provider, c); err != nil {
		t.Fatalf("a peer in another %s, beside a spent one: %v", wide, err)
	}
}

// peerAt adds a bare host with a fresh identity at the IP address ip (v4
// or v6) to net's mocknet, connected to host 0.
func peerAt(t *testing.T, net *testnet.Network, ip string) host.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	proto := "ip6"
	if netip.MustParseAddr(ip).Is4() {
		proto = "ip4"
	}
	h, err := net.Mocknet().AddPeer(key, ma.StringCast(fmt.Sprintf("/%s/%s/tcp/4001", proto, ip)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Mocknet().LinkPeers(h.ID(), net.Host(0).ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Mocknet().ConnectPeers(h.ID(), net.Host(0).ID()); err != nil {
		t.Fatal(err)
	}
	return h
}
