package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// budgetLimits are a provider's small memory budgets in these tests: 12 MiB
// for one peer's store streams.
var budgetLimits = p2p.MemoryLimits{Peer: 32 << 20, Stream: 12 << 20, ProtocolPeer: 12 << 20, Protocol: 64 << 20}

// newBudgetEnv is a provider (host 2) with small memory budgets, a flooding
// peer (host 0) and an honest uploader (host 1).
func newBudgetEnv(t *testing.T, opts ...store.HandlerOption) (net *testnet.Network, auth *spAuth, reg *prometheus.Registry) {
	t.Helper()
	return newBudgetEnvLimits(t, budgetLimits, opts...)
}

// newBudgetEnvLimits is newBudgetEnv with the provider's budgets limits.
func newBudgetEnvLimits(t *testing.T, limits p2p.MemoryLimits, opts ...store.HandlerOption) (net *testnet.Network, auth *spAuth, reg *prometheus.Registry) {
	t.Helper()
	net = testnet.New(t, 3, testnet.WithTopology(testnet.Star), testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 2 {
			return []p2p.Option{p2p.WithMemoryLimits(limits)}
		}
		return nil
	}))
	for _, i := range []int{0, 1} {
		if err := net.Host(i).Connect(context.Background(), net.Host(2).AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	auth = &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40}
	reg = prometheus.NewRegistry()
	serveStore(t, net, 2, auth, append([]store.HandlerOption{store.WithMetrics(reg)}, opts...)...)
	return net, auth, reg
}

// floodRequests opens a raw store stream from host 0 and asks to store every
// chunk of res, sending no data: each agreed chunk holds its reservation. It
// returns the IDs of the exchanges agreed (exchange i+1 asks for chunk i)
// and how many were refused for the memory budget: the peer's own, so
// never busy.
func floodRequests(t *testing.T, net *testnet.Network, res chunkList, obj uint64) (agreed []uint64, overBudget int, s network.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := net.Host(0).Libp2p().NewStream(ctx, net.Host(2).ID(), p2p.StoreProtocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	fw := p2p.NewFrameWriter(s)
	for i := range res.n() {
		c, size, proof := res.chunk(t, i)
		req := &pb.StoreRequest{Id: uint64(i + 1), Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
			BagId: spBag, ObjectId: obj, Cid: c, Length: size, Index: uint64(i), Proof: proof,
			ExpiryUnix: time.Now().Add(time.Hour).Unix(),
		}}}
		if err := fw.WriteMsg(req); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	fr := p2p.NewFrameReader(s, store.MaxFrame)
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range res.n() {
		var r pb.StoreReply
		if err := fr.ReadMsg(&r); err != nil {
			t.Fatalf("flood: reply: %v", err)
		}
		switch {
		case r.Status == pb.Status_STATUS_AGREED:
			agreed = append(agreed, r.Id)
		case r.Status == pb.Status_STATUS_REFUSED && strings.Contains(r.Reason, "memory budget"):
			if r.Busy || !strings.Contains(r.Reason, "fewer requests in flight") {
				t.Fatalf("flood: exchange %d refused for its own budget: busy %v, %q; want not busy, fewer requests", r.Id, r.Busy, r.Reason)
			}
			overBudget++
		default:
			t.Fatalf("flood: exchange %d answered %v %q", r.Id, r.Status, r.Reason)
		}
	}
	return agreed, overBudget, s
}

// TestMemoryBudgetRefusesFloodServesOthers floods a provider from one peer
// with chunk requests it never sends data for, each holding a chunk's worth
// of memory: the provider agrees to what its per-peer budget holds, refuses
// the rest with a reason naming the budget, and still serves another peer's
// upload whole.
func TestMemoryBudgetRefusesFloodServesOthers(t *testing.T) {
	net, auth, reg := newBudgetEnv(t)
	data := spRand(41, 32<<20)
	res := spChunkList(t, auth, 1, data, 1<<20)
	agreed, over, _ := floodRequests(t, net, res, 1)
	if over == 0 {
		t.Fatalf("flood of %d 1 MiB chunk requests: %d agreed, none refused for the budget", res.n(), len(agreed))
	}
	if len(agreed) == 0 || len(agreed) > int(budgetLimits.ProtocolPeer>>20) {
		t.Fatalf("flood: %d chunks agreed; the %d MiB budget holds at most %d", len(agreed), budgetLimits.ProtocolPeer>>20, budgetLimits.ProtocolPeer>>20)
	}
	if n := counterValue(t, reg, "satchel_provider_store_over_budget_total"); n != float64(over) {
		t.Fatalf("over_budget_total = %v, want %d", n, over)
	}

	// Another peer, its own budget: an object of 4 chunks goes through.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other := spRand(42, 4<<20)
	ores := spChunkList(t, auth, 2, other, 1<<20)
	st, err := store.Open(ctx, net.Host(1).Libp2p(), net.Host(2).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range ores.res.Chunks {
		if _, err := st.Push(ctx, spPush(t, ores.res, other, 2, i)); err != nil {
			t.Fatalf("honest peer, chunk %d: %v", i, err)
		}
	}
	if err := st.Bind(ctx, store.BindRequest{Bag: spBag, Object: 2, Chunks: ores.res.Chunks}); err != nil {
		t.Fatalf("honest peer bind: %v", err)
	}
}

// TestMemoryBudgetBindFlood sends BINDs of MaxBindChunks chunks, each
// charged about 32 MiB, on one stream: the first the budget cannot hold is
// refused with the reason, none is decoded past it, and the heap stays under
// a ceiling far below what 64 such rebuilds at once would take (about 2 GiB).
func TestMemoryBudgetBindFlood(t *testing.T) {
	net, _, _ := newBudgetEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := net.Host(0).Libp2p().NewStream(ctx, net.Host(2).ID(), p2p.StoreProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	chunks := make([]*pb.ChunkRef, store.MaxBindChunks)
	for i := range chunks {
		chunks[i] = &pb.ChunkRef{Cid: spChunkCID(i), Size: 1 << 20}
	}
	const binds = 16
	go func() {
		fw := p2p.NewFrameWriter(s)
		for i := range binds {
			_ = fw.WriteMsg(&pb.StoreRequest{Id: uint64(i + 1), Body: &pb.StoreRequest_Bind{Bind: &pb.BindRequest{
				BagId: spBag, ObjectId: 7, Chunks: chunks}}})
			_ = fw.Flush()
		}
	}()
	fr := p2p.NewFrameReader(s, store.MaxFrame)
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	refused := 0
	var peak uint64
	for range binds {
		var r pb.StoreReply
		if err := fr.ReadMsg(&r); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			break // reset for a frame over the budget: also a refusal
		}
		if r.Status != pb.Status_STATUS_REFUSED {
			t.Fatalf("bind %d: %v %q", r.Id, r.Status, r.Reason)
		}
		if strings.Contains(r.Reason, "memory budget") {
			refused++
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	if refused == 0 {
		t.Fatal("no BIND refused for the memory budget")
	}
	// A ceiling, not a figure: the test's own 90,000-chunk list and a few
	// frames in flight, far below 64 unbudgeted rebuilds.
	if peak > 1<<30 {
		t.Fatalf("heap reached %d MiB under a BIND flood", peak>>20)
	}
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func spChunkCID(i int) []byte {
	return chunkerCID([]byte(fmt.Sprintf("chunk %d", i)))
}

func chunkerCID(b []byte) []byte { return chunker.ChunkCID(b).Bytes() }

// chunkList is an object's chunking, to send requests for its chunks.
type chunkList struct {
	res *chunker.Result
}

func spChunkList(t *testing.T, auth *spAuth, obj uint64, data []byte, chunkSize int) chunkList {
	t.Helper()
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	auth.register(obj, spBag, res.Root, uint64(res.Size))
	return chunkList{res}
}

func (l chunkList) n() int { return len(l.res.Chunks) }

func (l chunkList) chunk(t *testing.T, i int) (c []byte, size uint64, proof [][]byte) {
	t.Helper()
	p, err := l.res.Proof(i)
	if err != nil {
		t.Fatal(err)
	}
	ch := l.res.Chunks[i]
	return ch.CID.Bytes(), uint64(ch.Size), p.Blocks
}

// TestStalledExchangesReleaseTheBudget: a peer asks to store chunks, is
// agreed to, never sends their data and keeps its stream alive with frames
// about exchanges that do not exist and requests the provider refuses
// (each of which renewed the read deadline). Once the agreed exchanges
// waited IdleTimeout with no data on the stream, the provider ends them
// FAILED, and the memory they held is the peer's again: its next request
// is agreed.
func TestStalledExchangesReleaseTheBudget(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	net, auth, _ := newBudgetEnv(t, store.WithClock(clock))
	data := spRand(43, 32<<20)
	res := spChunkList(t, auth, 1, data, 1<<20)
	agreed, over, s := floodRequests(t, net, res, 1)
	if len(agreed) == 0 || over == 0 {
		t.Fatalf("flood: %d agreed, %d refused for the budget; want both", len(agreed), over)
	}
	fw := p2p.NewFrameWriter(s)
	fr := p2p.NewFrameReader(s, store.MaxFrame)
	keepAlive := func() {
		t.Helper()
		if err := fw.WriteMsg(&pb.StoreRequest{Id: 1 << 40, Body: &pb.StoreRequest_Sign{Sign: &pb.SignRequest{}}}); err != nil {
			t.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	keepAlive() // within IdleTimeout: nothing given up
	// A request the provider refuses (over the memory budget), sent just
	// before IdleTimeout, keeps nothing alive: only data does.
	c0, size0, proof0 := res.chunk(t, 0)
	if err := fw.WriteMsg(&pb.StoreRequest{Id: 1 << 39, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, ObjectId: 1, Cid: c0, Length: size0, Index: 0, Proof: proof0, ExpiryUnix: time.Now().Add(time.Hour).Unix(),
	}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(store.IdleTimeout - time.Second)
	mu.Unlock()
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	var refused pb.StoreReply
	if err := fr.ReadMsg(&refused); err != nil || refused.Status != pb.Status_STATUS_REFUSED {
		t.Fatalf("a request over the budget: %v %q, %v; want REFUSED", refused.Status, refused.Reason, err)
	}

	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	keepAlive()
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range agreed {
		var r pb.StoreReply
		if err := fr.ReadMsg(&r); err != nil {
			t.Fatalf("reading the stalled exchanges' ends: %v", err)
		}
		if r.Status != pb.Status_STATUS_FAILED || !strings.Contains(r.Reason, "given up") {
			t.Fatalf("stalled exchange %d: %v %q; want FAILED, given up", r.Id, r.Status, r.Reason)
		}
	}
	// The budget is free again: a new request on the same stream is agreed.
	c, size, proof := res.chunk(t, 0)
	req := &pb.StoreRequest{Id: 1 << 41, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, ObjectId: 1, Cid: c, Length: size, Index: 0, Proof: proof, ExpiryUnix: time.Now().Add(time.Hour).Unix(),
	}}}
	if err := fw.WriteMsg(req); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	var r pb.StoreReply
	if err := fr.ReadMsg(&r); err != nil || r.Status != pb.Status_STATUS_AGREED {
		t.Fatalf("request after the stalled ones ended: %v %q, %v; want AGREED", r.Status, r.Reason, err)
	}
}

// TestBusyRefusalTellsUploaderToGoElsewhere: one peer's flood takes the
// store protocol's memory budget for all peers (its own stream's budget
// refuses the rest of its flood, and those refusals are not busy: fewer
// requests would help it). Another uploader's chunk then finds no room in
// the shared budget: it is REFUSED busy, "try another provider", and Push
// fails with ErrProviderBusy, so the uploader goes to another provider
// rather than shrinking its window.
func TestBusyRefusalTellsUploaderToGoElsewhere(t *testing.T) {
	limits := budgetLimits
	limits.Protocol = limits.Stream + 512<<10 // room for frames, not for a 1 MiB chunk
	net, auth, reg := newBudgetEnvLimits(t, limits)
	res := spChunkList(t, auth, 1, spRand(45, 16<<20), 1<<20)
	if agreed, over, _ := floodRequests(t, net, res, 1); len(agreed) == 0 || over == 0 {
		t.Fatalf("flood: %d agreed, %d refused for the budget; want both", len(agreed), over)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other := spRand(46, 1<<20)
	ores := spChunkList(t, auth, 2, other, 1<<20)
	st, err := store.Open(ctx, net.Host(1).Libp2p(), net.Host(2).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Push(ctx, spPush(t, ores.res, other, 2, 0))
	var refused *store.RefusedError
	if !errors.Is(err, store.ErrProviderBusy) || !errors.As(err, &refused) || !refused.Busy {
		t.Fatalf("push while another peer holds the shared budget: %v; want ErrProviderBusy", err)
	}
	if !strings.Contains(refused.Reason, "provider busy") || !strings.Contains(refused.Reason, "try another provider") {
		t.Fatalf("busy refusal reason %q; want 'provider busy … try another provider'", refused.Reason)
	}
	if n := counterValue(t, reg, "satchel_provider_store_over_budget_total"); n < 2 {
		t.Fatalf("over_budget_total = %v; want the flood's refusals and the busy one", n)
	}
}

// TestPipelineReportsBusyHop: a pipeline hop whose memory budget for all
// peers another peer's flood holds refuses the forwarded chunk as busy.
// The pipeline routes around it, and its failure comes back marked busy
// (matching ErrProviderBusy), both from the head that forwarded to it and
// relayed from a hop further down; a hop that failed otherwise is not.
func TestPipelineReportsBusyHop(t *testing.T) {
	limits := budgetLimits
	limits.Protocol = limits.Stream + 512<<10 // room for frames, not for a 1 MiB chunk
	e := newPLEnvRelay(t, 3, true, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 2 {
			return []p2p.Option{p2p.WithMemoryLimits(limits)}
		}
		return nil
	}))
	flood := spChunkList(t, e.auth, 1, spRand(47, 16<<20), 1<<20)
	if agreed, over, _ := floodRequests(t, e.net, flood, 1); len(agreed) == 0 || over == 0 {
		t.Fatalf("flood: %d agreed, %d refused for the budget; want both", len(agreed), over)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(48, 2<<20)
	res := e.spObjectData(t, 2, data, 1<<20)
	s := e.open(t, 1)
	for i, order := range [][]int{{2, 3}, {3, 2}} {
		c := spPush(t, res, data, 2, i)
		c.Forward = e.hops(order...)
		r, err := s.PushPipeline(ctx, c)
		if err != nil {
			t.Fatalf("forward %v: %v", order, err)
		}
		signed := checkReceipts(t, res, i, r)
		if len(r.Receipts) != 2 || !signed[e.id(1)] || !signed[e.id(3)] {
			t.Fatalf("forward %v: receipts from %v (failed %v); want providers 1 and 3", order, signed, r.Failed)
		}
		if len(r.Failed) != 1 || r.Failed[0].Peer != e.id(2) {
			t.Fatalf("forward %v: failed hops %v; want only provider 2", order, r.Failed)
		}
		if err := r.Failed[0].Err; !errors.Is(err, store.ErrProviderBusy) || !strings.Contains(err.Error(), "provider busy") {
			t.Fatalf("forward %v: the busy hop failed with %v; want ErrProviderBusy naming it busy", order, err)
		}
	}
}
