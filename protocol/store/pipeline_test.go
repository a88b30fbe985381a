package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// plEnv is an uploader (host 0) and providers on hosts 1.., each with its
// own block store, a store handler forwarding through a relay, and a fetch
// handler; they share one fake data directory.
type plEnv struct {
	net   *testnet.Network
	auth  *spAuth
	stops []func()
	fetch *fetch.Client
}

func newPLEnv(t testing.TB, providers int) *plEnv { return newPLEnvRelay(t, providers, true) }

// newPLEnvRelay is newPLEnv whose providers forward only with relay set,
// on a network started with opts.
func newPLEnvRelay(t testing.TB, providers int, relay bool, opts ...testnet.Option) *plEnv {
	t.Helper()
	e := &plEnv{
		net:  testnet.New(t, providers+1, opts...),
		auth: &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40},
	}
	for i := 1; i <= providers; i++ {
		h := e.net.Host(i)
		bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
		if err != nil {
			t.Fatal(err)
		}
		rl := store.NewRelay(h.Libp2p())
		opts := []store.HandlerOption{store.WithLogger(spDiscard)}
		if relay {
			opts = append(opts, store.WithRelay(rl))
		}
		sh := store.NewHandler(bs.ForProtocols(), e.auth, h.Libp2p().Peerstore().PrivKey(h.ID()), opts...)
		sh.Register(h.Protocol())
		fh := fetch.NewHandler(bs.ForProtocols(), &spPolicy{}, fetch.WithLogger(spDiscard))
		fh.Register(h.Protocol())
		var once sync.Once
		stop := func() {
			once.Do(func() {
				_ = sh.Close()
				_ = fh.Close()
				_ = rl.Close()
				_ = bs.Close()
			})
		}
		e.stops = append(e.stops, stop)
		t.Cleanup(stop)
	}
	e.fetch = fetch.NewClient(e.net.Host(0).Libp2p())
	t.Cleanup(func() { _ = e.fetch.Close() })
	return e
}

func (e *plEnv) id(i int) peer.ID { return e.net.Host(i).ID() }

func (e *plEnv) hops(ids ...int) []store.Hop {
	out := make([]store.Hop, len(ids))
	for k, i := range ids {
		out[k] = store.Hop{Peer: e.id(i), Addrs: e.net.Host(i).Libp2p().Addrs()}
	}
	return out
}

func (e *plEnv) open(t testing.TB, i int) *store.Stream {
	t.Helper()
	s, err := store.Open(context.Background(), e.net.Host(0).Libp2p(), e.id(i))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// bindAndGet binds object obj on provider i and reads every chunk back from
// it over the fetch protocol: it must be byte-exact.
func (e *plEnv) bindAndGet(t *testing.T, ctx context.Context, i int, obj uint64, res *chunker.Result, data []byte) {
	t.Helper()
	s := e.open(t, i)
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: obj, Chunks: res.Chunks}); err != nil {
		t.Fatalf("bind on provider %d: %v", i, err)
	}
	var got bytes.Buffer
	for _, c := range res.Chunks {
		b, err := e.fetch.GetBlock(ctx, e.id(i), c.CID)
		if err != nil {
			t.Fatalf("get %s from provider %d: %v", c.CID, i, err)
		}
		got.Write(b)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("object read back from provider %d differs", i)
	}
}

// checkReceipts verifies every receipt of a pipelined push against the peer
// it came from and returns the set of peers that signed.
func checkReceipts(t *testing.T, res *chunker.Result, i int, r store.PipelineResult) map[peer.ID]bool {
	t.Helper()
	signed := map[peer.ID]bool{}
	for _, hr := range r.Receipts {
		if err := store.VerifyReceipt(hr.Receipt, hr.Peer); err != nil {
			t.Fatalf("chunk %d: receipt of %s: %v", i, hr.Peer, err)
		}
		if !bytes.Equal(hr.Receipt.Cid, res.Chunks[i].CID.Bytes()) {
			t.Fatalf("chunk %d: receipt of %s names another chunk", i, hr.Peer)
		}
		signed[hr.Peer] = true
	}
	return signed
}

func TestPipelinedPutThreeReplicas(t *testing.T) {
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(11, 3<<20+12345)
	res := e.spObjectData(t, 1, data, 256<<10)
	s := e.open(t, 1)
	var wg sync.WaitGroup
	results := make([]store.PipelineResult, len(res.Chunks))
	errs := make([]error, len(res.Chunks))
	for i := range res.Chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := spPush(t, res, data, 1, i)
			c.Forward = e.hops(2, 3)
			results[i], errs[i] = s.PushPipeline(ctx, c)
		}()
	}
	wg.Wait()
	for i := range res.Chunks {
		if errs[i] != nil {
			t.Fatalf("chunk %d: %v", i, errs[i])
		}
		if len(results[i].Failed) != 0 {
			t.Fatalf("chunk %d: hops failed: %v", i, results[i].Failed)
		}
		signed := checkReceipts(t, res, i, results[i])
		if len(results[i].Receipts) != 3 || !signed[e.id(1)] || !signed[e.id(2)] || !signed[e.id(3)] {
			t.Fatalf("chunk %d: receipts from %v, want providers 1, 2 and 3", i, signed)
		}
	}
	for i := 1; i <= 3; i++ {
		e.bindAndGet(t, ctx, i, 1, res, data)
	}
}

// spObjectData on a plEnv registers the object in the shared directory.
func (e *plEnv) spObjectData(t testing.TB, obj uint64, data []byte, chunkSize int) *chunker.Result {
	t.Helper()
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	e.auth.register(obj, spBag, res.Root, uint64(res.Size))
	return res
}

// TestPipelineMiddleKilledMidPut kills the middle provider of a pipeline
// while chunks are in flight: the head routes around it to the tail, so no
// receipt already collected is lost, and the uploader completes the put on
// a replacement provider. Every provider that ends with the object returns
// it byte for byte.
func TestPipelineMiddleKilledMidPut(t *testing.T) {
	e := newPLEnv(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := spRand(12, 8<<20)
	res := e.spObjectData(t, 1, data, 128<<10)
	n := len(res.Chunks)
	s := e.open(t, 1)

	var signedCount atomic.Int32
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			e.stops[1]() // provider 2's handlers and store
			_ = e.net.Host(2).Close()
			close(killed)
		})
	}
	results := make([]store.PipelineResult, n)
	errs := make([]error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := spPush(t, res, data, 1, i)
				c.Forward = e.hops(2, 3)
				results[i], errs[i] = s.PushPipeline(ctx, c)
				if signedCount.Add(1) == int32(n/3) {
					kill() // mid-put: a third signed, the rest in flight or to come
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	<-killed

	// Every chunk is signed by the head and by the tail, or names the tail
	// not done; those the middle missed name it failed, with the reason. A
	// middle killed after it stored and signed a chunk but before its
	// forward reached the tail relays its receipt and leaves the tail
	// unreported (ErrNotForwarded: its own stop cut the forward, no fault
	// of the tail's): the uploader then sends that chunk to the tail
	// itself, as it does for any hop not done.
	replicas := map[peer.ID]int{}
	middleFailed := 0
	var toTail []int
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("chunk %d: %v", i, errs[i])
		}
		signed := checkReceipts(t, res, i, results[i])
		tailFailed := slices.ContainsFunc(results[i].Failed, func(f store.HopError) bool { return f.Peer == e.id(3) })
		if !signed[e.id(1)] || signed[e.id(3)] == tailFailed || (tailFailed && !signed[e.id(2)]) {
			t.Fatalf("chunk %d: receipts from %v, failed %v; want head and tail (or the middle's and the tail failed after it)", i, signed, results[i].Failed)
		}
		if tailFailed {
			if f := results[i].Failed[slices.IndexFunc(results[i].Failed, func(f store.HopError) bool { return f.Peer == e.id(3) })]; !errors.Is(f.Err, store.ErrNotForwarded) {
				t.Fatalf("chunk %d: the tail, alive, named failed: %v; want not forwarded", i, f.Err)
			}
			toTail = append(toTail, i)
		}
		for p := range signed {
			replicas[p]++
		}
		for _, f := range results[i].Failed {
			if (f.Peer != e.id(2) && f.Peer != e.id(3)) || f.Err == nil {
				t.Fatalf("chunk %d: failed hop %v", i, f)
			}
			if f.Peer == e.id(2) {
				middleFailed++
			}
		}
		if len(results[i].Receipts)+len(results[i].Failed) != 3 {
			t.Fatalf("chunk %d: %d receipts and %d failures for a pipeline of 3", i, len(results[i].Receipts), len(results[i].Failed))
		}
	}
	if middleFailed == 0 {
		t.Fatal("no chunk reports the killed middle provider failed")
	}
	if len(toTail) > 0 {
		r3 := e.open(t, 3)
		for _, i := range toTail {
			rc, err := r3.Push(ctx, spPush(t, res, data, 1, i))
			if err != nil {
				t.Fatalf("chunk %d straight to the tail: %v", i, err)
			}
			if err := store.VerifyReceipt(rc, e.id(3)); err != nil {
				t.Fatal(err)
			}
			replicas[e.id(3)]++
		}
	}
	if replicas[e.id(1)] != n || replicas[e.id(3)] != n {
		t.Fatalf("replicas %v of %d chunks", replicas, n)
	}

	// The replacement (provider 4) gets every chunk; the put now has 3
	// receipts per chunk from live providers.
	r4 := e.open(t, 4)
	for i := range n {
		rc, err := r4.Push(ctx, spPush(t, res, data, 1, i))
		if err != nil {
			t.Fatalf("replacement, chunk %d: %v", i, err)
		}
		if err := store.VerifyReceipt(rc, e.id(4)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{1, 3, 4} {
		e.bindAndGet(t, ctx, i, 1, res, data)
	}
}

func TestPipelineBadForwardLists(t *testing.T) {
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(13, 100<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	s := e.open(t, 1)

	// The caller refuses lists that loop or are too long before sending.
	for name, fwd := range map[string][]store.Hop{
		"self":      e.hops(2, 1),
		"duplicate": e.hops(2, 3, 2),
		"too long":  make([]store.Hop, store.MaxForwardHops+1),
	} {
		c := spPush(t, res, data, 1, 0)
		c.Forward = fwd
		if _, err := s.PushPipeline(ctx, c); err == nil {
			t.Fatalf("%s: pushed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}

	// The provider refuses them too, from an uploader that does not check:
	// the forward list is written on a raw stream.
	tooLong := make([]*pb.ForwardHop, store.MaxForwardHops+1)
	for i := range tooLong {
		tooLong[i] = &pb.ForwardHop{Peer: []byte(e.id(2))}
	}
	for name, tc := range map[string]struct {
		fwd  []*pb.ForwardHop
		want string
	}{
		"too long":       {tooLong, "exceeds the limit"},
		"self":           {[]*pb.ForwardHop{{Peer: []byte(e.id(2))}, {Peer: []byte(e.id(1))}}, "own provider: a loop"},
		"back to sender": {[]*pb.ForwardHop{{Peer: []byte(e.id(0))}}, "sent the chunk: a loop"},
		"duplicate":      {[]*pb.ForwardHop{{Peer: []byte(e.id(2))}, {Peer: []byte(e.id(3))}, {Peer: []byte(e.id(2))}}, "second time: a loop"},
		"bad peer":       {[]*pb.ForwardHop{{Peer: []byte("nope")}}, "invalid peer ID"},
		"bad session":    {[]*pb.ForwardHop{{Peer: []byte(e.id(2)), Session: []byte{1, 2}}}, "session of 2 bytes"},
	} {
		raw, err := e.net.Host(0).Libp2p().NewStream(ctx, e.id(1), p2p.StoreProtocol)
		if err != nil {
			t.Fatal(err)
		}
		c := res.Chunks[0]
		req := &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
			BagId: spBag, ObjectId: 1, Cid: c.CID.Bytes(), Length: uint64(c.Size), Forward: tc.fwd,
		}}}
		if err := p2p.WriteMsg(raw, req); err != nil {
			t.Fatal(err)
		}
		r := spExpect(t, raw, pb.Status_STATUS_REFUSED)
		if !strings.Contains(r.Reason, tc.want) {
			t.Fatalf("%s: reason %q, want it to say %q", name, r.Reason, tc.want)
		}
		_ = raw.Reset()
	}
	// Nothing was stored by the refused requests.
	has, err := e.fetch.Have(ctx, e.id(1), []cid.Cid{res.Chunks[0].CID})
	if err != nil || has[0] {
		t.Fatalf("refused chunk held: %v %v", has, err)
	}
}

// TestPipelineHopLiesAboutReceipts: a head provider that relays a receipt it
// forged for the next hop, or one for another chunk, fails the push with
// ErrBadReceipt; one that relays nothing leaves the hop ErrNotForwarded.
func TestPipelineHopLiesAboutReceipts(t *testing.T) {
	net := testnet.New(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, next := net.Host(1).Libp2p(), net.Host(2).Libp2p()
	headKey := head.Peerstore().PrivKey(head.ID())
	data := spRand(14, 64<<10)
	c := chunker.ChunkCID(data)
	// The forger signs "next's" receipt with its own key but names next.
	forged := &pb.Receipt{Cid: c.Bytes(), ObjectId: 1, BagId: spBag, StoredAtUnix: 1, ExpiryUnix: 2}
	if err := store.SignReceipt(headKey, forged); err != nil {
		t.Fatal(err)
	}
	forged.Provider = []byte(next.ID())
	nextKey := next.Peerstore().PrivKey(next.ID())
	// A genuine receipt of next, but for another chunk.
	other := func(cr *pb.StoreChunkRequest) []*pb.Receipt {
		r := spAnswer(cr)
		r.Cid = chunker.ChunkCID([]byte("other")).Bytes()
		return []*pb.Receipt{spSigned(t, nextKey, r)}
	}
	// A genuine receipt of next for the chunk, answering this push.
	genuine := func(cr *pb.StoreChunkRequest) []*pb.Receipt { return []*pb.Receipt{spSigned(t, nextKey, spAnswer(cr))} }
	for name, tc := range map[string]struct {
		relay   func(*pb.StoreChunkRequest) []*pb.Receipt
		wantErr error
	}{
		"genuine":     {genuine, nil},
		"forged":      {func(*pb.StoreChunkRequest) []*pb.Receipt { return []*pb.Receipt{forged} }, store.ErrBadReceipt},
		"other chunk": {other, store.ErrBadReceipt},
		"twice": {func(cr *pb.StoreChunkRequest) []*pb.Receipt {
			return append(genuine(cr), genuine(cr)...)
		}, store.ErrBadReceipt},
		"relays nothing": {func(*pb.StoreChunkRequest) []*pb.Receipt { return nil }, nil},
	} {
		var relay atomic.Pointer[func(*pb.StoreChunkRequest) []*pb.Receipt]
		relay.Store(&tc.relay)
		head.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
			defer s.Close()
			_ = spScriptRelay(s, headKey, *relay.Load())
		})
		s, err := store.Open(ctx, net.Host(0).Libp2p(), head.ID())
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.PushPipeline(ctx, store.ChunkPush{Bag: spBag, Object: 1, CID: c, Data: data,
			Forward: []store.Hop{{Peer: next.ID()}}})
		_ = s.Close()
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("%s: err %v, want %v", name, err, tc.wantErr)
			}
			t.Logf("%s: %v", name, err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "genuine" {
			if len(res.Receipts) != 2 || res.Receipts[1].Peer != next.ID() || len(res.Failed) != 0 {
				t.Fatalf("%s: receipts %v, failed %v", name, res.Receipts, res.Failed)
			}
			continue
		}
		if len(res.Receipts) != 1 || len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, store.ErrNotForwarded) {
			t.Fatalf("%s: %d receipts, failed %v", name, len(res.Receipts), res.Failed)
		}
	}
}

// spScriptRelay plays a head provider that lies: it answers one chunk
// exchange with a receipt of its own (answering the request) and relays
// the receipts relay returns for the request.
func spScriptRelay(s network.Stream, key crypto.PrivKey, relay func(*pb.StoreChunkRequest) []*pb.Receipt) error {
	return spScriptAnswer(s, key, spAnswer, relay)
}

// spScriptAnswer answers one chunk exchange with the receipt own returns
// for the request, signed with key, relaying what relay returns.
func spScriptAnswer(s network.Stream, key crypto.PrivKey, own func(*pb.StoreChunkRequest) *pb.Receipt, relay func(*pb.StoreChunkRequest) []*pb.Receipt) error {
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	var req pb.StoreRequest
	if err := p2p.ReadMsg(s, &req, store.MaxFrame); err != nil {
		return err
	}
	cr := req.GetRequest()
	if cr == nil {
		return fmt.Errorf("first frame %v, want a chunk request", &req)
	}
	id := req.Id
	if err := p2p.WriteMsg(s, &pb.StoreReply{Id: id, Status: pb.Status_STATUS_AGREED}); err != nil {
		return err
	}
	for req.GetSign() == nil {
		if err := p2p.ReadMsg(s, &req, store.MaxFrame); err != nil {
			return err
		}
	}
	for _, st := range []pb.Status{pb.Status_STATUS_SEGMENTS_OK, pb.Status_STATUS_DATA_RECEIVED} {
		if err := p2p.WriteMsg(s, &pb.StoreReply{Id: id, Status: st}); err != nil {
			return err
		}
	}
	r := &pb.StoreReply{Id: id, Status: pb.Status_STATUS_SIGNED, Relayed: relay(cr), Receipt: own(cr)}
	if err := store.SignReceipt(key, r.Receipt); err != nil {
		return err
	}
	return p2p.WriteMsg(s, r)
}

// TestPipelineHeadHoldsChunk: a head that holds the chunk already answers
// ALREADY_STORED, so the uploader sends no bytes, and forwards the chunk
// read back from its store; every hop still signs.
func TestPipelineHeadHoldsChunk(t *testing.T) {
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(15, 300<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	s := e.open(t, 1)
	if _, err := s.Push(ctx, spPush(t, res, data, 1, 0)); err != nil {
		t.Fatal(err)
	}
	var steps spSteps
	c := spPush(t, res, data, 1, 0)
	c.Forward = e.hops(2, 3)
	c.OnStep = steps.add
	r, err := s.PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	signed := checkReceipts(t, res, 0, r)
	if len(signed) != 3 || len(r.Failed) != 0 {
		t.Fatalf("receipts from %v, failed %v", signed, r.Failed)
	}
	got := steps.get()
	if !slices.Contains(got, store.PushAlreadyStored) || slices.Contains(got, store.PushDataSent) {
		t.Fatalf("steps %v: the head held the chunk, no bytes should have gone to it", got)
	}
	for _, i := range []int{2, 3} {
		b, err := e.fetch.GetBlock(ctx, e.id(i), res.Chunks[0].CID)
		if err != nil || !bytes.Equal(b, data[:res.Chunks[0].Size]) {
			t.Fatalf("provider %d: %v", i, err)
		}
	}
}

// TestPipelineHopWithoutSessionRoutedAround: a streamed session's chunk
// whose second hop has no session of its own cannot go there (each hop is
// authorised by its own grant, never the forwarder's); the head routes
// around it to the third hop and reports the second failed with the reason.
func TestPipelineHopWithoutSessionRoutedAround(t *testing.T) {
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(16, 200<<10)
	c := store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(data), Data: data, Session: bytes.Repeat([]byte{1}, store.SessionIDLength)}
	c.Forward = e.hops(2, 3)
	c.Forward[1].Session = bytes.Repeat([]byte{3}, store.SessionIDLength) // hop 2 (index 0) has none
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Receipts) != 2 || r.Receipts[0].Peer != e.id(1) || r.Receipts[1].Peer != e.id(3) {
		t.Fatalf("receipts %v, want providers 1 and 3", r.Receipts)
	}
	if len(r.Failed) != 1 || r.Failed[0].Peer != e.id(2) || !strings.Contains(r.Failed[0].Err.Error(), "session") || errors.Is(r.Failed[0].Err, store.ErrProviderBusy) {
		t.Fatalf("failed %v, want provider 2 with a reason naming the session", r.Failed)
	}
	t.Logf("hop 2: %v", r.Failed[0].Err)
}

// TestPipelineProviderWithoutRelay: a provider that does not forward stores
// the chunk and reports every hop failed with the reason, so the uploader
// pushes to them itself; the pipeline costs it nothing but the report.
func TestPipelineProviderWithoutRelay(t *testing.T) {
	e := newPLEnvRelay(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(17, 100<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	c := spPush(t, res, data, 1, 0)
	c.Forward = e.hops(2, 3)
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Receipts) != 1 || r.Receipts[0].Peer != e.id(1) || len(r.Failed) != 2 {
		t.Fatalf("receipts %v, failed %v", r.Receipts, r.Failed)
	}
	for _, f := range r.Failed {
		if !strings.Contains(f.Err.Error(), "does not forward") {
			t.Fatalf("hop %s: %v", f.Peer, f.Err)
		}
	}
	if has, err := e.fetch.Have(ctx, e.id(2), []cid.Cid{res.Chunks[0].CID}); err != nil || has[0] {
		t.Fatalf("provider 2 holds the chunk (%v, %v); nothing forwarded it", has, err)
	}
}

// TestPipelineJunkNotForwarded: a chunk whose bytes do not match its CID
// (each segment matching the uploader's segment map) fails on the head and
// is not passed down the pipeline: the next hop receives nothing.
func TestPipelineJunkNotForwarded(t *testing.T) {
	e := newPLEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var streams atomic.Int32
	e.net.Host(2).Libp2p().SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		streams.Add(1)
		_ = s.Reset()
	})
	data := spRand(21, 256<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	c := spPush(t, res, data, 1, 0)
	junk := bytes.Clone(c.Data)
	junk[len(junk)/2] ^= 0xff
	c.Data, c.Forward = junk, e.hops(2)
	s, err := store.Open(ctx, e.net.Host(0).Libp2p(), e.id(1), store.WithSegmentSize(store.MinSegmentSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.PushPipeline(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "do not match CID") {
		t.Fatalf("pushing junk under a valid CID: %v; want a CID mismatch", err)
	}
	// The head answered only after deciding not to forward: had it
	// forwarded, the next hop's stream would have been opened by now.
	if n := streams.Load(); n != 0 {
		t.Fatalf("the next hop received %d store streams for a junk chunk; want 0", n)
	}
}

// TestPipelineDeepHopGivesUpFirst: the tail of a pipeline takes the chunk
// and never answers. The hop before it gives up on it before the head gives
// up on that hop, so the middle hop's receipt still reaches the uploader and
// only the tail is reported failed.
func TestPipelineDeepHopGivesUpFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a forward deadline")
	}
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var held []network.Stream
	e.net.Host(3).Libp2p().SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		mu.Lock()
		held = append(held, s)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, s) // reads everything, answers nothing
	})
	// Reset the tail's streams first, so the relays' Close need not wait.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range held {
			_ = s.Reset()
		}
	})
	data := spRand(22, 64<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	c := spPush(t, res, data, 1, 0)
	c.Forward = e.hops(2, 3)
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	signed := checkReceipts(t, res, 0, r)
	if len(r.Receipts) != 2 || !signed[e.id(1)] || !signed[e.id(2)] {
		t.Fatalf("receipts from %v (failed %v); want providers 1 and 2", signed, r.Failed)
	}
	if len(r.Failed) != 1 || r.Failed[0].Peer != e.id(3) || errors.Is(r.Failed[0].Err, store.ErrProviderBusy) {
		t.Fatalf("failed hops %v; want only provider 3, not busy", r.Failed)
	}
}

// TestPipelineHopTokens: a session opened under a renter's contract takes a
// forwarded chunk only with the renter's token for that chunk at that
// provider. The uploader's pipeline signs them, so its chunks reach every
// hop; a forwarding provider, which learns the hop's session, cannot store
// a chunk of its own choosing under it, without a token or with the token
// of another chunk or another provider.
func TestPipelineHopTokens(t *testing.T) {
	e := newPLEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	renter := e.id(0)
	headSess, hopSess := bytes.Repeat([]byte{1}, store.SessionIDLength), bytes.Repeat([]byte{2}, store.SessionIDLength)
	e.auth.rent(headSess, renter)
	e.auth.rent(hopSess, renter)

	data := spRand(31, 100<<10)
	c := store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(data), Data: data, Session: headSess}
	c.Forward = e.hops(2)
	c.Forward[0].Session = hopSess
	r, err := e.open(t, 1).PushPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Receipts) != 2 || len(r.Failed) != 0 {
		t.Fatalf("receipts %v, failed %v; want both providers' receipts", r.Receipts, r.Failed)
	}
	if c.Forward[0].Token != nil {
		t.Fatal("PushPipeline wrote a token into the caller's forward list")
	}

	// The head, as a rogue forwarder, pushes its own chunk into the hop's
	// session.
	s, err := store.Open(ctx, e.net.Host(1).Libp2p(), e.id(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	junk := spRand(32, 50<<10)
	own := store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(junk), Data: junk, Session: hopSess}
	renterKey := e.net.Host(0).Libp2p().Peerstore().PrivKey(renter)
	tokenOf := func(c cid.Cid, hop peer.ID) []byte {
		tok, err := store.SignHopToken(renterKey, spBag, hopSess, c, hop)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	headKey := e.net.Host(1).Libp2p().Peerstore().PrivKey(e.id(1))
	ownToken, err := store.SignHopToken(headKey, spBag, hopSess, own.CID, e.id(2))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string][]byte{
		"no token":                 nil,
		"the forwarder's own":      ownToken,
		"another chunk's":          tokenOf(c.CID, e.id(2)),
		"this chunk's at the head": tokenOf(own.CID, e.id(1)),
	} {
		_, err := store.PushAsHop(ctx, s, own, tok)
		var refused *store.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "hop token") {
			t.Fatalf("%s: %v; want a refusal naming the hop token", name, err)
		}
	}
	if has, err := e.fetch.Have(ctx, e.id(2), []cid.Cid{own.CID}); err != nil || has[0] {
		t.Fatalf("the hop holds the forwarder's chunk (%v, %v)", has, err)
	}
	// With the renter's token for this chunk at this hop it is taken: the
	// token, not the peer, is the authority.
	if _, err := store.PushAsHop(ctx, s, own, tokenOf(own.CID, e.id(2))); err != nil {
		t.Fatalf("with the renter's token: %v", err)
	}
}
