package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"

	tn "github.com/satchel-net/satchel/testnet"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// The tests run a challenger (host 0) and a provider (host 1) on loopback
// libp2p hosts; the provider answers from a real block store holding an
// object whose DAG has two levels (more chunks than one node links).

const (
	testChunk  = 256
	testChunks = 400 // > chunker.MaxLinks: the proof path has 2 blocks
	testBag    = "dynamic:channel:1"
	testObject = 7
)

type env struct {
	challenger, provider host.Host
	net                  *testnet.Network
	bs                   *blockstore.Store
	data                 []byte
	res                  *chunker.Result
	target               audit.Target
	reg                  *prometheus.Registry
	handler              *audit.Handler
	corrupt              chan cid.Cid
}

// newEnv stores one object on the provider and serves it with blocks
// (nil: the store itself) and handler options.
func newEnv(t *testing.T, wrap func(audit.Blocks) audit.Blocks, opts ...audit.HandlerOption) *env {
	t.Helper()
	net := testnet.New(t, 2)
	e := &env{net: net, challenger: net.Host(0).Libp2p(), provider: net.Host(1).Libp2p(),
		reg: prometheus.NewRegistry(), corrupt: make(chan cid.Cid, 16)}
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	e.bs = bs
	e.data = randomBytes(t, testChunk*testChunks-17)
	e.res, err = chunker.Sum(context.Background(), bytes.NewReader(e.data), chunker.WithChunkSize(testChunk))
	if err != nil {
		t.Fatal(err)
	}
	m := blockstore.Manifest{Bag: testBag, Object: testObject, Root: e.res.Root}
	for i, c := range e.res.Chunks {
		if err := bs.Put(c.CID, e.chunk(i)); err != nil {
			t.Fatal(err)
		}
		m.Chunks = append(m.Chunks, blockstore.ChunkRef{CID: c.CID, Size: uint64(c.Size)})
	}
	if err := bs.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	e.target = audit.Target{Bag: testBag, Object: testObject, Root: e.res.Root}
	var blocks audit.Blocks = bs.ForAudit()
	if wrap != nil {
		blocks = wrap(blocks)
	}
	opts = append([]audit.HandlerOption{audit.WithMetrics(e.reg), audit.WithLogger(slog.New(slog.DiscardHandler)),
		audit.WithCorruptBlock(func(c cid.Cid) { e.corrupt <- c })}, opts...)
	e.handler = audit.NewHandler(bs.ForAudit(), blocks, opts...)
	e.handler.Register(net.Host(1).Protocol())
	t.Cleanup(func() { _ = e.handler.Close() })
	return e
}

func (e *env) chunk(i int) []byte {
	c := e.res.Chunks[i]
	return e.data[c.Offset : c.Offset+int64(c.Size)]
}

func (e *env) client(t *testing.T, opts ...audit.ClientOption) *audit.Client {
	t.Helper()
	c, err := audit.NewClient(e.challenger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) key() crypto.PrivKey { return e.challenger.Peerstore().PrivKey(e.challenger.ID()) }

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func counter(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, err := metricsutil.Counter(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An honest provider passes 100 audits in a row, over chunks spread across
// the whole object (first, last, and random ones).
func TestHonestProviderPasses100Audits(t *testing.T) {
	e := newEnv(t, nil, audit.WithRate(1000, 1000))
	c := e.client(t)
	ctx := testCtx(t)
	for i := range 100 {
		samples := []audit.Sample{{Index: 0}, {Index: testChunks - 1}, {Index: (i * 37) % testChunks}, {Index: (i*131 + 5) % testChunks}}
		out, err := c.Audit(ctx, e.provider.ID(), e.target, samples)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Pass {
			t.Fatalf("audit %d failed: %v", i, out.Err)
		}
		if out.BytesIn < 4*testChunk-17 {
			t.Fatalf("audit %d received only %d bytes", i, out.BytesIn)
		}
	}
	// The handler counts a challenge once its last proof is flushed, so the
	// client may have read the 100th answer a moment before it is counted.
	ok := func() float64 { return counter(t, e.reg, "satchel_provider_audit_challenges_total", "status", "ok") }
	tn.Wait(t, "the 100th ok challenge counted", func() bool { return ok() >= 100 })
	if n := ok(); n != 100 {
		t.Fatalf("ok challenges = %v, want 100", n)
	}
}

// A one-chunk object is its own root: the proof path is empty.
func TestOneChunkObject(t *testing.T) {
	e := newEnv(t, nil)
	small := randomBytes(t, 100)
	c := chunker.ChunkCID(small)
	if err := e.bs.Put(c, small); err != nil {
		t.Fatal(err)
	}
	if err := e.bs.PutManifest(blockstore.Manifest{Bag: testBag, Object: 9, Root: c, Chunks: []blockstore.ChunkRef{{CID: c, Size: 100}}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.client(t).Audit(testCtx(t), e.provider.ID(), audit.Target{Bag: testBag, Object: 9, Root: c}, []audit.Sample{{Index: 0}})
	if err != nil || !out.Pass {
		t.Fatalf("one-chunk audit: %v %v", err, out.Err)
	}
}

// Range samples are checked against the challenger's own copy.
func TestRangeSamples(t *testing.T) {
	e := newEnv(t, nil)
	mine := map[cid.Cid][]byte{}
	for i, c := range e.res.Chunks {
		mine[c.CID] = e.chunk(i)
	}
	local := func(c cid.Cid) ([]byte, error) { return mine[c], nil }
	c := e.client(t, audit.WithLocalChunks(local))
	out, err := c.Audit(testCtx(t), e.provider.ID(), e.target, []audit.Sample{{Index: 3, Offset: 10, Length: 50}, {Index: 250, Offset: 0, Length: 1}})
	if err != nil || !out.Pass {
		t.Fatalf("range audit: %v %v", err, out.Err)
	}
	// Each answer is its range and the two interior blocks of the path
	// (about 7 KiB each), not the chunk.
	if out.BytesIn > 20<<10 {
		t.Errorf("range audit moved %d bytes", out.BytesIn)
	}
	if _, err := e.client(t).Audit(testCtx(t), e.provider.ID(), e.target, []audit.Sample{{Index: 3, Length: 5}}); !errors.Is(err, audit.ErrInvalid) {
		t.Fatalf("range sample without a local copy: %v, want ErrInvalid", err)
	}
}

// A provider that lost a chunk (its file deleted) or holds a corrupt one
// fails; the corrupt one is reported for repair.
func TestLostAndCorruptChunksFail(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	ctx := testCtx(t)
	lost := e.res.Chunks[10].CID
	if err := e.bs.Delete(lost); err != nil {
		t.Fatal(err)
	}
	out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 10}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrNotHeld) {
		t.Fatalf("lost chunk: pass=%v err=%v %v, want ErrNotHeld", out.Pass, err, out.Err)
	}
	bad := e.res.Chunks[20].CID
	blocktest.Overwrite(t, e.bs, bad, func(b []byte) { b[5] ^= 0x40 })
	out, err = c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 20}})
	if err != nil || out.Pass {
		t.Fatalf("corrupt chunk passed: %v", err)
	}
	select {
	case got := <-e.corrupt:
		if !got.Equals(bad) {
			t.Fatalf("reported %s corrupt, want %s", got, bad)
		}
	case <-ctx.Done():
		t.Fatal("corrupt chunk not reported")
	}
	// Asked for an object it does not hold at all, or under another root.
	other := e.target
	other.Root = chunker.ChunkCID([]byte("x"))
	if out, _ := c.Audit(ctx, e.provider.ID(), other, []audit.Sample{{Index: 0}}); out.Pass || !errors.Is(out.Err, audit.ErrNotHeld) {
		t.Fatalf("wrong root: %v", out.Err)
	}
}

// lying wraps a block source to answer wrongly.
type lying struct {
	audit.Blocks
	get func(c cid.Cid) ([]byte, error)
}

func (l lying) Get(c cid.Cid) ([]byte, error) { return l.get(c) }

// A provider that answers with another chunk's bytes, with a wrong proof
// path, or too late fails.
func TestLyingAnswersFail(t *testing.T) {
	ctx := testCtx(t)
	// The env a lying source belongs to is set once newEnv returns, while
	// its handler may already serve: read through an atomic pointer.
	var ep atomic.Pointer[env]
	otherChunk := func(b audit.Blocks) audit.Blocks {
		return lying{b, func(c cid.Cid) ([]byte, error) {
			if e := ep.Load(); e != nil && c.Equals(e.res.Chunks[5].CID) {
				return e.chunk(6), nil
			}
			return b.Get(c)
		}}
	}
	e := newEnv(t, otherChunk)
	ep.Store(e)
	out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 5}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrBadAnswer) || !errors.Is(out.Err, chunker.ErrBadProof) {
		t.Fatalf("other chunk's bytes: pass=%v %v %v", out.Pass, err, out.Err)
	}

	var e2p atomic.Pointer[env]
	wrongPath := func(b audit.Blocks) audit.Blocks {
		return lying{b, func(c cid.Cid) ([]byte, error) {
			if e2 := e2p.Load(); e2 != nil && c.Equals(e2.res.Nodes[0].CID) { // a proof through another node
				return e2.res.Nodes[1].Data, nil
			}
			return b.Get(c)
		}}
	}
	e2 := newEnv(t, wrongPath)
	e2p.Store(e2)
	out, err = e2.client(t).Audit(ctx, e2.provider.ID(), e2.target, []audit.Sample{{Index: 5}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrBadAnswer) {
		t.Fatalf("wrong proof: pass=%v %v %v", out.Pass, err, out.Err)
	}

	var e4p atomic.Pointer[env]
	flipped := func(b audit.Blocks) audit.Blocks {
		return lying{b, func(c cid.Cid) ([]byte, error) {
			data, err := b.Get(c)
			if e4 := e4p.Load(); e4 != nil && c.Equals(e4.res.Chunks[3].CID) {
				data = bytes.Clone(data)
				data[20] ^= 1
			}
			return data, err
		}}
	}
	e4 := newEnv(t, flipped)
	e4p.Store(e4)
	mine := func(c cid.Cid) ([]byte, error) { return e4.chunk(3), nil }
	out, err = e4.client(t, audit.WithLocalChunks(mine)).Audit(ctx, e4.provider.ID(), e4.target, []audit.Sample{{Index: 3, Offset: 16, Length: 8}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrBadAnswer) {
		t.Fatalf("wrong range bytes: pass=%v %v %v", out.Pass, err, out.Err)
	}

	release := make(chan struct{})
	var e3p atomic.Pointer[env]
	slow := func(b audit.Blocks) audit.Blocks {
		return lying{b, func(c cid.Cid) ([]byte, error) {
			if e3 := e3p.Load(); e3 != nil && c.Equals(e3.res.Chunks[1].CID) {
				<-release
			}
			return b.Get(c)
		}}
	}
	e3 := newEnv(t, slow)
	e3p.Store(e3)
	// Registered after e3's, so it runs first: the handler's Close waits
	// for the blocked answer.
	t.Cleanup(func() { close(release) })
	out, err = e3.client(t, audit.WithAnswerTimeout(300*time.Millisecond)).Audit(ctx, e3.provider.ID(), e3.target, []audit.Sample{{Index: 1}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrTimeout) {
		t.Fatalf("late answer: pass=%v %v %v", out.Pass, err, out.Err)
	}
}

// send opens a raw audit stream from the challenger, sends sc and returns
// the provider's header.
func (e *env) send(t *testing.T, sc *pb.SignedChallenge) *pb.AnswerHeader {
	t.Helper()
	ctx := testCtx(t)
	s, err := e.challenger.NewStream(ctx, e.provider.ID(), p2p.AuditProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fw := p2p.NewFrameWriter(s)
	if err := fw.WriteMsg(sc); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	var hdr pb.AnswerHeader
	if err := p2p.NewFrameReader(s, audit.MaxFrame).ReadMsg(&hdr); err != nil {
		t.Fatal(err)
	}
	return &hdr
}

func (e *env) challengeMsg(c *audit.Client, at time.Time) *pb.Challenge {
	return &pb.Challenge{Bag: testBag, Object: testObject, Root: e.res.Root.Bytes(), Nonce: bytes.Repeat([]byte{7}, 32),
		TimeUnixMs: at.UnixMilli(), Challenger: []byte(e.challenger.ID()), Provider: []byte(e.provider.ID()),
		Samples: []*pb.Sample{{Index: 1}}}
}

// Forged, unsigned, replayed, stale and misdirected challenges are refused,
// and a challenger over its rate is refused.
func TestBadChallengesRefused(t *testing.T) {
	e := newEnv(t, nil, audit.WithRate(0.001, 6))
	c := e.client(t)
	refused := func(what string, hdr *pb.AnswerHeader) {
		t.Helper()
		if hdr.Status != pb.AuditStatus_AUDIT_STATUS_REFUSED {
			t.Fatalf("%s: status %v (%s), want REFUSED", what, hdr.Status, hdr.Reason)
		}
		if len(hdr.Nonce) > 0 && hdr.Count != 0 {
			t.Fatalf("%s: answered", what)
		}
	}
	now := time.Now()
	// Signed by another key than the challenger's.
	other, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := audit.SignChallenge(other, e.challengeMsg(c, now))
	if err != nil {
		t.Fatal(err)
	}
	refused("forged", e.send(t, forged))
	// Unsigned.
	good, err := audit.SignChallenge(e.key(), e.challengeMsg(c, now))
	if err != nil {
		t.Fatal(err)
	}
	refused("unsigned", e.send(t, &pb.SignedChallenge{Challenge: good.Challenge}))
	// Tampered after signing.
	tampered := *e.challengeMsg(c, now)
	tampered.Samples = []*pb.Sample{{Index: 2}}
	tsc, _ := audit.SignChallenge(e.key(), &tampered)
	tsc.Challenge = good.Challenge[:len(good.Challenge)-1]
	refused("tampered", e.send(t, tsc))
	// Genuine: answered once, refused when replayed.
	if hdr := e.send(t, good); hdr.Status != pb.AuditStatus_AUDIT_STATUS_OK {
		t.Fatalf("genuine challenge: %v %s", hdr.Status, hdr.Reason)
	}
	refused("replayed", e.send(t, good))
	// Stale.
	stale := e.challengeMsg(c, now.Add(-2*audit.ClockWindow))
	stale.Nonce = bytes.Repeat([]byte{8}, 32)
	ssc, _ := audit.SignChallenge(e.key(), stale)
	refused("stale", e.send(t, ssc))
	// Six challenges used the burst; the next is rate limited.
	out, err := c.Audit(testCtx(t), e.provider.ID(), e.target, []audit.Sample{{Index: 0}})
	if err != nil || out.Pass || !errors.Is(out.Err, audit.ErrRefused) {
		t.Fatalf("over the rate: pass=%v %v %v", out.Pass, err, out.Err)
	}
	if n := counter(t, e.reg, "satchel_provider_audit_challenges_total", "status", "invalid"); n != 4 {
		t.Errorf("invalid challenges = %v, want 4", n)
	}
}

// A challenge meant for another provider is refused by this one.
func TestChallengeForAnotherProviderRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	ch := e.challengeMsg(c, time.Now())
	ch.Provider = []byte(e.challenger.ID())
	sc, _ := audit.SignChallenge(e.key(), ch)
	if hdr := e.send(t, sc); hdr.Status != pb.AuditStatus_AUDIT_STATUS_REFUSED {
		t.Fatalf("misdirected challenge: %v", hdr.Status)
	}
}

// Results verify with the auditor's key; tampered or forged ones do not.
func TestResultSignatures(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	r := &pb.AuditResult{Auditor: []byte(id), Provider: []byte(id), Bag: testBag, Object: 1, Verdict: pb.Verdict_VERDICT_FAIL, Reason: "lost"}
	data, err := audit.SignResult(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.OpenResult(data)
	if err != nil || got.Reason != "lost" {
		t.Fatalf("open: %v", err)
	}
	if _, err := audit.SignResult(other, r); !errors.Is(err, audit.ErrInvalid) {
		t.Fatalf("signing as another auditor: %v", err)
	}
	var sr pb.SignedResult
	if err := proto.Unmarshal(data, &sr); err != nil {
		t.Fatal(err)
	}
	sr.Result[len(sr.Result)-1] ^= 1
	tampered, _ := proto.Marshal(&sr)
	if _, err := audit.OpenResult(tampered); err == nil {
		t.Fatal("a tampered result opened")
	}
	// On the topic the auditor must be the message's author as well.
	otherID, _ := peer.IDFromPrivateKey(other)
	if got, err := audit.OpenMessage(&pubsub.Message{Message: &pubsubpb.Message{Data: data, From: []byte(id)}}); err != nil || got.Reason != "lost" {
		t.Fatalf("open the auditor's message: %v", err)
	}
	if _, err := audit.OpenMessage(&pubsub.Message{Message: &pubsubpb.Message{Data: data, From: []byte(otherID)}}); !errors.Is(err, audit.ErrInvalid) {
		t.Fatalf("a result relayed as another author's message: %v", err)
	}
}

// ChunkCount reads the chunk count from the DAG alone.
func TestChunkCount(t *testing.T) {
	e := newEnv(t, nil)
	n, err := audit.ChunkCount(e.res.Root, e.bs.Get)
	if err != nil || n != testChunks {
		t.Fatalf("ChunkCount = %d, %v; want %d", n, err, testChunks)
	}
}

// fileNode is a UnixFS file node linking leaves with the block sizes
// given, as a peer could serve it: the CID is right, the sizes are its own.
func fileNode(t *testing.T, sizes []uint64, leaf cid.Cid) (cid.Cid, []byte) {
	t.Helper()
	fs := ft.NewFSNode(ft.TFile)
	for _, b := range sizes {
		fs.AddBlockSize(b)
	}
	data, err := fs.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd := dag.NodeWithData(data)
	nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256})
	for range sizes {
		if err := nd.AddRawLink("", &ipld.Link{Cid: leaf, Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return nd.Cid(), nd.RawData()
}

// A root whose block sizes overflow the sum, claim more than any object
// could be, or name an oversized chunk is a lying answer, not a count.
func TestAuditChunkCountRefusesLyingSizes(t *testing.T) {
	leaf := []byte("x")
	lc := chunker.ChunkCID(leaf)
	for _, sizes := range [][]uint64{
		{1, 1 << 63},              // sums to a negative int
		{1 << 63, 1 << 63, 1},     // wraps around to 1
		{1, audit.MaxObjectBytes}, // one byte over the bound
		{chunker.MaxChunkSize + 1, 1},
	} {
		root, blk := fileNode(t, sizes, lc)
		blocks := map[cid.Cid][]byte{root: blk, lc: leaf}
		n, err := audit.ChunkCount(root, func(c cid.Cid) ([]byte, error) { return blocks[c], nil })
		if !errors.Is(err, audit.ErrBadAnswer) {
			t.Errorf("sizes %v: ChunkCount = %d, %v; want ErrBadAnswer", sizes, n, err)
		}
	}
	// The largest object allowed is counted, and fits an int.
	root, blk := fileNode(t, []uint64{1, audit.MaxObjectBytes - 1}, lc)
	blocks := map[cid.Cid][]byte{root: blk, lc: leaf}
	if n, err := audit.ChunkCount(root, func(c cid.Cid) ([]byte, error) { return blocks[c], nil }); err != nil || n != audit.MaxObjectBytes {
		t.Fatalf("ChunkCount of a 1 PiB object of 1-byte chunks = %d, %v", n, err)
	}
}

// Picking samples of a huge object allocates for the samples, not the
// object's chunks, and picks distinct indexes in range.
func TestAuditPickIndexesHugeObject(t *testing.T) {
	const n = audit.MaxObjectBytes
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	idx := audit.PickIndexes(n, audit.MaxSamples)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("picking %d of %d chunks allocated %d bytes", audit.MaxSamples, n, got)
	}
	if len(idx) != audit.MaxSamples {
		t.Fatalf("picked %v", idx)
	}
	for i, k := range idx {
		if k < 0 || k >= n || (i > 0 && idx[i-1] >= k) {
			t.Fatalf("picked %v: not distinct, sorted and in range", idx)
		}
	}
	// Small objects: all chunks when asked for more, each reachable.
	if got := audit.PickIndexes(3, 8); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("PickIndexes(3, 8) = %v", got)
	}
	hit := map[int]bool{}
	for range 2000 {
		for _, k := range audit.PickIndexes(10, 2) {
			hit[k] = true
		}
	}
	if len(hit) != 10 {
		t.Fatalf("2000 picks of 2 of 10 chunks reached only %v", hit)
	}
	if got := audit.PickIndexes(0, 4); len(got) != 0 {
		t.Fatalf("PickIndexes(0, 4) = %v", got)
	}
}

// blockingChunk wraps a block source so reads of one chunk wait until
// released, counting the reads of every chunk.
type blockingChunk struct {
	audit.Blocks
	ep      *atomic.Pointer[env]
	index   atomic.Int64 // the chunk to block on, -1 for none
	entered chan struct{}
	release chan struct{}
	reads   atomic.Int64 // reads of chunks other than index
}

func (b *blockingChunk) Get(c cid.Cid) ([]byte, error) {
	if e := b.ep.Load(); e != nil {
		for i, ch := range e.res.Chunks {
			if !c.Equals(ch.CID) {
				continue
			}
			if int64(i) == b.index.Load() {
				b.entered <- struct{}{}
				<-b.release
			} else {
				b.reads.Add(1)
			}
		}
	}
	return b.Blocks.Get(c)
}

// A challenger that gives up (its stream reset) stops the provider's work:
// the chunks after the one being read when it left are never read.
func TestAuditResetChallengeStopsWork(t *testing.T) {
	var ep atomic.Pointer[env]
	bc := &blockingChunk{ep: &ep, entered: make(chan struct{}, 1), release: make(chan struct{})}
	bc.index.Store(5)
	left := make(chan struct{}, 1)
	e := newEnv(t, func(b audit.Blocks) audit.Blocks { bc.Blocks = b; return bc },
		audit.WithLeaveHook(func() { left <- struct{}{} }))
	ep.Store(e)
	t.Cleanup(func() {
		select {
		case <-bc.release:
		default:
			close(bc.release)
		}
	})
	ctx := testCtx(t)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		out, err := e.client(t).Audit(actx, e.provider.ID(), e.target, []audit.Sample{{Index: 5}, {Index: 6}, {Index: 300}, {Index: 399}})
		if err == nil && out.Pass {
			err = errors.New("passed")
		}
		done <- err
	}()
	select {
	case <-bc.entered:
	case <-ctx.Done():
		t.Fatal("the provider never read the first sampled chunk")
	}
	cancel() // the client resets its stream
	if err := <-done; err == nil {
		t.Fatal("a cancelled audit reported no error")
	}
	select {
	case <-left:
	case <-ctx.Done():
		t.Fatal("the handler did not see the challenger leave")
	}
	close(bc.release)
	abandoned := func() float64 {
		return counter(t, e.reg, "satchel_provider_audit_challenges_total", "status", "abandoned")
	}
	tn.Wait(t, "the abandoned challenge counted", func() bool { return abandoned() == 1 })
	if n := bc.reads.Load(); n != 0 {
		t.Fatalf("the provider read %d more chunks after the challenger left", n)
	}
	if n := counter(t, e.reg, "satchel_provider_audit_bytes_out_total"); n != 0 {
		t.Fatalf("%v bytes sent to a challenger that left", n)
	}

	// A challenger that waits gets its answer, each chunk read once.
	bc.index.Store(-1)
	out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 5}, {Index: 6}, {Index: 300}})
	if err != nil || !out.Pass {
		t.Fatalf("audit after a reset: %v %v", err, out.Err)
	}
	if n := bc.reads.Load(); n != 3 {
		t.Fatalf("3 sampled chunks were read %d times", n)
	}
}

// The node-wide answer budget refuses challenges once spent, whoever sends
// them, and admits them again as it refills.
func TestAuditAnswerBudgetRefuses(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	const perSecond, burst = 1 << 10, 20 << 10
	// One challenger's own share unbounded: the node-wide budget is tested
	// (TestAuditOneChallengerCannotTakeTheBudget tests the share).
	e := newEnv(t, nil, audit.WithRate(1000, 1000), audit.WithHandlerClock(now), audit.WithAnswerBudget(perSecond, burst),
		audit.WithChallengerBudget(1<<30, 1<<30))
	ctx := testCtx(t)
	passed := 0
	var refused error
	for range 50 {
		out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: passed % testChunks}})
		if err != nil {
			t.Fatal(err)
		}
		if !out.Pass {
			refused = out.Err
			break
		}
		passed++
	}
	// Each answer reads a chunk and two interior blocks (about 7 KiB):
	// the 20 KiB budget (and one answer's debt) covers a few, not 50.
	if passed == 0 || passed > 5 || !errors.Is(refused, audit.ErrRefused) {
		t.Fatalf("%d audits passed before %v; want a few, then ErrRefused", passed, refused)
	}
	if n := counter(t, e.reg, "satchel_provider_audit_challenges_total", "status", "busy"); n != 1 {
		t.Fatalf("busy challenges = %v, want 1", n)
	}
	// Still spent for everyone at the same instant...
	if out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 1}}); err != nil || !errors.Is(out.Err, audit.ErrRefused) {
		t.Fatalf("another challenger on a spent budget: %v %v", err, out.Err)
	}
	// ...and refilled a minute later.
	clock.Add(int64(time.Minute))
	if out, err := e.client(t).Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 2}}); err != nil || !out.Pass {
		t.Fatalf("audit on a refilled budget: %v %v", err, out.Err)
	}
}

// Answers are sent from the chunks they read, so all answers together hold
// at most MaxAnswerMemory of them: a challenge that would need more is
// refused, and every answer gives back what it held.
func TestAuditAnswerMemoryBounded(t *testing.T) {
	e := newEnv(t, nil, audit.WithRate(1000, 1000))
	ctx := testCtx(t)
	c := e.client(t)
	release, ok := audit.HoldAnswerMemory(e.handler, audit.MaxAnswerMemory-audit.MaxChunkSize/2)
	if !ok {
		t.Fatal("answer memory taken by no answer")
	}
	out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 1}})
	if err != nil || !errors.Is(out.Err, audit.ErrRefused) {
		t.Fatalf("audit with the answers' memory taken: %v %v; want ErrRefused", err, out.Err)
	}
	release()
	// The proof path's blocks are held too: with room for one chunk left,
	// a chunk under an interior block does not fit.
	release, ok = audit.HoldAnswerMemory(e.handler, audit.MaxAnswerMemory-audit.MaxChunkSize)
	if !ok {
		t.Fatal("answer memory taken by no answer")
	}
	out, err = c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: 1}})
	if err != nil || !errors.Is(out.Err, audit.ErrRefused) {
		t.Fatalf("audit with room for the chunk but not its proof path: %v %v; want ErrRefused", err, out.Err)
	}
	release()
	for i := range 20 {
		out, err := c.Audit(ctx, e.provider.ID(), e.target, []audit.Sample{{Index: i}, {Index: 300 + i}})
		if err != nil || !out.Pass {
			t.Fatalf("audit %d: %v %v", i, err, out.Err)
		}
	}
	tn.Wait(t, "the answers' memory given back", func() bool { return audit.AnswerMemoryHeld(e.handler) == 0 })
}
