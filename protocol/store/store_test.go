package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

const spBag = "dynamic:channel:1"

var spDiscard = slog.New(slog.DiscardHandler)

// spAuth is a fake data directory: registered objects with their roots, the
// bags assigned to this node, and a voucher size for streamed uploads.
type spAuth struct {
	mu       sync.Mutex
	objects  map[uint64]spObject
	quota    uint64
	panicObj uint64             // AuthorizeChunk panics for this object (0: none)
	renters  map[string]peer.ID // streamed sessions' renters (SessionRenter)
	askers   map[peer.ID]int    // who AuthorizeChunk was asked for (store.RemotePeer)
	busyObj  uint64             // AuthorizeChunk answers busy for this object (0: none)
}

// SessionRenter implements store.SessionOwner.
func (a *spAuth) SessionRenter(_ context.Context, _ string, session []byte) (peer.ID, crypto.PubKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.renters[string(session)], nil
}

// rent names p the renter of session.
func (a *spAuth) rent(session []byte, p peer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.renters == nil {
		a.renters = map[string]peer.ID{}
	}
	a.renters[string(session)] = p
}

type spObject struct {
	bag  string
	root cid.Cid
	size uint64
}

func (a *spAuth) register(obj uint64, bag string, root cid.Cid, size uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.objects[obj] = spObject{bag, root, size}
}

func (a *spAuth) AuthorizeChunk(ctx context.Context, bag string, object uint64) (cid.Cid, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := store.RemotePeer(ctx); ok {
		if a.askers == nil {
			a.askers = map[peer.ID]int{}
		}
		a.askers[p]++
	}
	if a.panicObj != 0 && object == a.panicObj {
		panic("spAuth: asked to panic")
	}
	if a.busyObj != 0 && object == a.busyObj {
		return cid.Undef, fmt.Errorf("chain look-ups all taken: %w", store.ErrProviderBusy)
	}
	o, ok := a.objects[object]
	if !ok || o.bag != bag {
		return cid.Undef, fmt.Errorf("object %d is not registered in bag %s", object, bag)
	}
	return o.root, nil
}

func (a *spAuth) AuthorizeSession(_ context.Context, bag string, n uint64) error {
	if bag != spBag {
		return fmt.Errorf("bag %s is not assigned to this node's bucket", bag)
	}
	if n > a.quota {
		return fmt.Errorf("bucket is full: %d bytes requested, %d free", n, a.quota)
	}
	return nil
}

// spPolicy serves every block except those listed.
type spPolicy struct{ blocked sync.Map }

func (p *spPolicy) Serves(_ context.Context, c cid.Cid) bool {
	_, no := p.blocked.Load(c)
	return !no
}

// spEnv is a provider (host 1) with a store and both handlers, and an
// uploader (host 0).
type spEnv struct {
	client, provider host.Host
	proto            *p2p.Protocol
	bs               *blockstore.Store
	auth             *spAuth
	policy           *spPolicy
	reg              *prometheus.Registry
	p2pReg           *prometheus.Registry // the hosts' framework metrics
	bound            chan [2]any
	corrupt          chan cid.Cid
	fetch            *fetch.Client
}

func newSPEnv(t testing.TB) *spEnv {
	t.Helper()
	p2pReg := prometheus.NewRegistry()
	net := testnet.New(t, 2, testnet.WithHostOptions(func(int) []p2p.Option {
		return []p2p.Option{p2p.WithMetrics(p2pReg)}
	}))
	e := &spEnv{
		p2pReg:   p2pReg,
		client:   net.Host(0).Libp2p(),
		provider: net.Host(1).Libp2p(),
		proto:    net.Host(1).Protocol(),
		auth:     &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40},
		policy:   &spPolicy{},
		reg:      prometheus.NewRegistry(),
		bound:    make(chan [2]any, 16),
		corrupt:  make(chan cid.Cid, 16),
	}
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
	if err != nil {
		t.Fatal(err)
	}
	e.bs = bs
	key := e.provider.Peerstore().PrivKey(e.provider.ID())
	sh := store.NewHandler(bs.ForProtocols(), e.auth, key,
		store.WithMetrics(e.reg), store.WithLogger(spDiscard),
		store.WithObjectBound(func(bag string, obj uint64) { e.bound <- [2]any{bag, obj} }))
	sh.Register(e.proto)
	fh := fetch.NewHandler(bs.ForProtocols(), e.policy,
		fetch.WithMetrics(e.reg), fetch.WithLogger(spDiscard),
		fetch.WithCorruptBlock(func(c cid.Cid) { e.corrupt <- c }))
	fh.Register(e.proto)
	e.fetch = fetch.NewClient(e.client)
	t.Cleanup(func() {
		_ = e.fetch.Close()
		_ = sh.Close()
		_ = fh.Close()
		_ = bs.Close()
	})
	return e
}

func (e *spEnv) open(t testing.TB, opts ...store.StreamOption) *store.Stream {
	t.Helper()
	s, err := store.Open(context.Background(), e.client, e.provider.ID(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func spRand(seed uint64, n int) []byte { return benchutil.Rand(seed, n) }

// spObjectData chunks data and registers it as object obj.
func (e *spEnv) spObjectData(t testing.TB, obj uint64, data []byte, chunkSize int) *chunker.Result {
	t.Helper()
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	e.auth.register(obj, spBag, res.Root, uint64(res.Size))
	return res
}

func spPush(t testing.TB, res *chunker.Result, data []byte, obj uint64, i int) store.ChunkPush {
	t.Helper()
	proof, err := res.Proof(i)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Chunks[i]
	return store.ChunkPush{Bag: spBag, Object: obj, Index: i, CID: c.CID,
		Data: data[c.Offset : c.Offset+int64(c.Size)], Proof: proof, Expiry: time.Now().Add(time.Hour)}
}

func TestStorePushBindFetch(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(1, 5<<20)
	res := e.spObjectData(t, 1, data, 256<<10)
	s := e.open(t)

	// Every chunk over one stream, pushed from several goroutines.
	receipts := make([]*pb.Receipt, len(res.Chunks))
	var wg sync.WaitGroup
	errs := make(chan error, len(res.Chunks))
	for i := range res.Chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := s.Push(ctx, spPush(t, res, data, 1, i))
			if err != nil {
				errs <- fmt.Errorf("chunk %d: %w", i, err)
				return
			}
			receipts[i] = rc
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, rc := range receipts {
		if err := store.VerifyReceipt(rc, e.provider.ID()); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		if !bytes.Equal(rc.Cid, res.Chunks[i].CID.Bytes()) || rc.ObjectId != 1 || rc.BagId != spBag {
			t.Fatalf("receipt %d names the wrong chunk", i)
		}
	}
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-e.bound:
		if b[0] != spBag || b[1] != uint64(1) {
			t.Fatalf("ObjectBound(%v)", b)
		}
	default:
		t.Fatal("ObjectBound not called before BOUND")
	}
	m, ok, err := e.bs.Manifest(1)
	if err != nil || !ok || !m.Root.Equals(res.Root) || m.Size != uint64(len(data)) {
		t.Fatalf("manifest: %+v %v %v", m.Root, ok, err)
	}

	// Every block back, verified, over the fetch protocol.
	var all []cid.Cid
	for _, c := range res.Chunks {
		all = append(all, c.CID)
	}
	for _, n := range res.Nodes {
		all = append(all, n.CID)
	}
	have, err := e.fetch.Have(ctx, e.provider.ID(), all)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for i, c := range all {
		if !have[i] {
			t.Fatalf("HAVE says %s is missing", c)
		}
		b, err := e.fetch.GetBlock(ctx, e.provider.ID(), c)
		if err != nil {
			t.Fatalf("GetBlock %s: %v", c, err)
		}
		if i < len(res.Chunks) {
			got.Write(b)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("object read back differs")
	}
	// The same, from many goroutines at once over the pipelined stream.
	var fwg sync.WaitGroup
	ferrs := make(chan error, len(all))
	for _, c := range all {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			if _, err := e.fetch.GetBlock(ctx, e.provider.ID(), c); err != nil {
				ferrs <- err
			}
		}()
	}
	fwg.Wait()
	close(ferrs)
	for err := range ferrs {
		t.Fatalf("concurrent GetBlock: %v", err)
	}
	part, size, err := e.fetch.GetRange(ctx, e.provider.ID(), res.Chunks[2].CID, 1000, 500)
	c2 := res.Chunks[2]
	if err != nil || size != uint64(c2.Size) || !bytes.Equal(part, data[c2.Offset+1000:c2.Offset+1500]) {
		t.Fatalf("GetRange = %d bytes, size %d, %v", len(part), size, err)
	}

	if n := spCounter(t, e.reg, "satchel_provider_store_chunks_total", "result", "stored"); n != float64(len(res.Chunks)) {
		t.Fatalf("chunks stored metric = %v", n)
	}
	if n := spCounter(t, e.reg, "satchel_provider_store_bytes_in_total"); n != float64(len(data)) {
		t.Fatalf("bytes in metric = %v", n)
	}

	// A duplicate push is ALREADY_STORED and still yields a receipt.
	rc, err := s.Push(ctx, spPush(t, res, data, 1, 3))
	if err != nil {
		t.Fatalf("duplicate push: %v", err)
	}
	if err := store.VerifyReceipt(rc, e.provider.ID()); err != nil {
		t.Fatal(err)
	}
	if n := spCounter(t, e.reg, "satchel_provider_store_chunks_total", "result", "already_stored"); n != 1 {
		t.Fatalf("already_stored metric = %v", n)
	}
}

func spCounter(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, err := metricsutil.Counter(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStoreRefusals(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(2, 1<<20)
	res := e.spObjectData(t, 1, data, 128<<10)
	other := spRand(3, 300<<10)
	resOther := e.spObjectData(t, 2, other, 128<<10)
	s := e.open(t)

	wrongBytes := spPush(t, res, data, 1, 0)
	wrongBytes.Data = bytes.Clone(wrongBytes.Data)
	wrongBytes.Data[100] ^= 1

	wrongIndex := spPush(t, res, data, 1, 4)
	wrongIndex.Index = 5

	wrongRoot := spPush(t, res, data, 1, 1)
	wrongRoot.Object = 2 // a proof against object 1's root, for object 2

	notRegistered := spPush(t, res, data, 1, 2)
	notRegistered.Object = 99

	wrongBag := spPush(t, resOther, other, 2, 0)
	wrongBag.Bag = "dynamic:channel:9"

	sessionFull := store.ChunkPush{Bag: spBag, CID: res.Chunks[5].CID, Data: data[5*128<<10 : 6*128<<10], Session: bytes.Repeat([]byte{1}, 16)}
	sessionOtherBag := sessionFull
	sessionOtherBag.Bag = "dynamic:channel:9"

	expired := spPush(t, res, data, 1, 6)
	expired.Expiry = time.Now().Add(-time.Hour)

	e.auth.quota = 1000
	for _, tc := range []struct {
		name   string
		push   store.ChunkPush
		opts   []store.StreamOption
		status pb.Status
		reason string
	}{
		{"bytes do not match the CID", wrongBytes, nil, pb.Status_STATUS_FAILED, "do not match"},
		{"bytes do not match the CID, segmented", wrongBytes, []store.StreamOption{store.WithSegmentSize(16 << 10)}, pb.Status_STATUS_FAILED, "do not match"},
		{"proof for another index", wrongIndex, nil, pb.Status_STATUS_REFUSED, "is not chunk 5"},
		{"proof against another root", wrongRoot, nil, pb.Status_STATUS_REFUSED, "is not chunk 1 of object 2"},
		{"object not registered", notRegistered, nil, pb.Status_STATUS_REFUSED, "object 99 is not registered"},
		{"object in another bag", wrongBag, nil, pb.Status_STATUS_REFUSED, "not registered in bag dynamic:channel:9"},
		{"session over the voucher", sessionFull, nil, pb.Status_STATUS_REFUSED, "bucket is full"},
		{"session of a bag not assigned", sessionOtherBag, nil, pb.Status_STATUS_REFUSED, "not assigned"},
		{"expiry passed", expired, nil, pb.Status_STATUS_REFUSED, "has passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s
			if tc.opts != nil {
				st = e.open(t, tc.opts...)
			}
			_, err := st.Push(ctx, tc.push)
			var re *store.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Push: %v, want a RefusedError", err)
			}
			if re.Status != tc.status || !strings.Contains(re.Reason, tc.reason) {
				t.Fatalf("Push: %v (%v), want %v with %q", re, re.Status, tc.status, tc.reason)
			}
			if held, _ := e.bs.Has(tc.push.CID); held {
				t.Fatal("refused chunk was stored")
			}
		})
	}
	// The stream survived every refusal.
	if _, err := s.Push(ctx, spPush(t, res, data, 1, 7)); err != nil {
		t.Fatalf("push after refusals: %v", err)
	}
	if st := e.bs.Stats(); st.Blocks != 1 {
		t.Fatalf("store holds %d blocks, want 1", st.Blocks)
	}
	// Bind with a chunk missing, and with a list that builds another root.
	// Neither asks to be bound again: the same BIND would fail the same way.
	err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks})
	var re *store.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "not held") || !re.RetrySaid || re.Retry {
		t.Fatalf("Bind with missing chunks: %v (%+v); want FAILED, retry said false", err, re)
	}
	err = s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks[1:]})
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "on chain") || !re.RetrySaid || re.Retry {
		t.Fatalf("Bind with a wrong list: %v (%+v); want FAILED, retry said false", err, re)
	}
	if _, ok, _ := e.bs.Manifest(1); ok {
		t.Fatal("object recorded after a failed bind")
	}
}

func TestStreamedUploadSession(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(4, 700<<10)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	session := bytes.Repeat([]byte{7}, store.SessionIDLength)
	s := e.open(t)
	extra := spRand(5, 1000) // pushed in the session but not part of the object
	for i, c := range res.Chunks {
		p := store.ChunkPush{Bag: spBag, Index: i, CID: c.CID, Data: data[c.Offset : c.Offset+int64(c.Size)], Session: session}
		rc, err := s.Push(ctx, p)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if rc.ObjectId != 0 {
			t.Fatalf("receipt object = %d", rc.ObjectId)
		}
	}
	if _, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(extra), Data: extra, Session: session}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.bs.SessionBytes(append([]byte{'s'}, session...)); n != uint64(len(data)+len(extra)) {
		t.Fatalf("session bytes = %d", n)
	}
	// Not registered yet: bind refused.
	err = s.Bind(ctx, store.BindRequest{Session: session, Bag: spBag, Object: 5, Chunks: res.Chunks})
	var re *store.RefusedError
	if !errors.As(err, &re) || re.Status != pb.Status_STATUS_REFUSED {
		t.Fatalf("bind before registration: %v", err)
	}
	e.auth.register(5, spBag, res.Root, uint64(res.Size))
	if err := s.Bind(ctx, store.BindRequest{Session: session, Bag: spBag, Object: 5, Chunks: res.Chunks}); err != nil {
		t.Fatal(err)
	}
	// The session ended with the bind: the stray chunk went, the object's stayed.
	if held, _ := e.bs.Has(chunker.ChunkCID(extra)); held {
		t.Fatal("chunk outside the object kept after bind")
	}
	if _, err := e.bs.ExpireSessions(time.Now().Add(30 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	missing, err := e.bs.MissingBlocks(5)
	if err != nil || len(missing) != 0 {
		t.Fatalf("missing after bind and expiry: %v %v", missing, err)
	}
}

// TestStreamedUploadDrop: DROP ends a streamed session at once — its chunks
// go, except one an object also holds — refuses a session of another bag,
// and answers DROPPED for a session that is not open.
func TestStreamedUploadDrop(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.open(t)
	session := bytes.Repeat([]byte{9}, store.SessionIDLength)
	shared := spRand(6, 3000) // also a one-chunk object bound below
	alone := spRand(7, 5000)
	for _, d := range [][]byte{shared, alone} {
		if _, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(d), Data: d, Session: session}); err != nil {
			t.Fatal(err)
		}
	}
	e.auth.register(3, spBag, chunker.ChunkCID(shared), uint64(len(shared)))
	other := bytes.Repeat([]byte{8}, store.SessionIDLength)
	if _, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(shared), Data: shared, Session: other}); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(ctx, store.BindRequest{Session: other, Bag: spBag, Object: 3, Chunks: []chunker.ChunkInfo{{CID: chunker.ChunkCID(shared), Size: len(shared)}}}); err != nil {
		t.Fatal(err)
	}

	err := s.Drop(ctx, session, "dynamic:channel:99")
	var re *store.RefusedError
	if !errors.As(err, &re) || re.Status != pb.Status_STATUS_REFUSED {
		t.Fatalf("drop naming another bag: %v", err)
	}
	if n, _ := e.bs.SessionBytes(append([]byte{'s'}, session...)); n != uint64(len(shared)+len(alone)) {
		t.Fatalf("session bytes after a refused drop = %d", n)
	}
	if err := s.Drop(ctx, session, spBag); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.bs.SessionBytes(append([]byte{'s'}, session...)); n != 0 {
		t.Fatalf("session bytes after drop = %d", n)
	}
	if held, _ := e.bs.Has(chunker.ChunkCID(alone)); held {
		t.Fatal("dropped session's chunk kept")
	}
	if held, _ := e.bs.Has(chunker.ChunkCID(shared)); !held {
		t.Fatal("chunk of a bound object deleted with a dropped session")
	}
	if err := s.Drop(ctx, session, spBag); err != nil {
		t.Fatalf("dropping a session no longer open: %v", err)
	}
}

func TestReceiptTamperedFails(t *testing.T) {
	e := newSPEnv(t)
	ctx := context.Background()
	data := spRand(6, 1000)
	c := chunker.ChunkCID(data)
	e.auth.register(1, spBag, c, uint64(len(data))) // a one-chunk object: the chunk is the root
	rc, err := e.open(t).Push(ctx, store.ChunkPush{Bag: spBag, Object: 1, CID: c, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyReceipt(rc, e.provider.ID()); err != nil {
		t.Fatal(err)
	}
	for name, tamper := range map[string]func(r *pb.Receipt){
		"expiry":    func(r *pb.Receipt) { r.ExpiryUnix++ },
		"stored at": func(r *pb.Receipt) { r.StoredAtUnix-- },
		"object":    func(r *pb.Receipt) { r.ObjectId = 2 },
		"bag":       func(r *pb.Receipt) { r.BagId = "dynamic:channel:2" },
		"cid":       func(r *pb.Receipt) { r.Cid = chunker.ChunkCID([]byte("x")).Bytes() },
		"signature": func(r *pb.Receipt) { r.Signature[0] ^= 1 },
		"provider":  func(r *pb.Receipt) { r.Provider = []byte(e.client.ID()) },
	} {
		r := proto.Clone(rc).(*pb.Receipt)
		tamper(r)
		if err := store.VerifyReceipt(r, e.provider.ID()); !errors.Is(err, store.ErrBadReceipt) {
			t.Errorf("tampered %s: VerifyReceipt = %v", name, err)
		}
	}
	if err := store.VerifyReceipt(rc, e.client.ID()); !errors.Is(err, store.ErrBadReceipt) {
		t.Errorf("receipt checked against another peer: %v", err)
	}
}

// spRawStream opens a store stream without the StoreStream wrapper, to send
// frames a well-behaved uploader never sends.
func spRawStream(t *testing.T, e *spEnv) network.Stream {
	t.Helper()
	s, err := e.client.NewStream(context.Background(), e.provider.ID(), p2p.StoreProtocol)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { _ = s.Reset() })
	return s
}

func spExpect(t *testing.T, s network.Stream, want pb.Status) *pb.StoreReply {
	t.Helper()
	var r pb.StoreReply
	if err := p2p.ReadMsg(s, &r, 0); err != nil {
		t.Fatalf("waiting for %v: %v", want, err)
	}
	if r.Status != want {
		t.Fatalf("got %v (%s), want %v", r.Status, r.Reason, want)
	}
	return &r
}

func TestFrameOverLimitResetsStream(t *testing.T) {
	e := newSPEnv(t)
	data := spRand(7, 100<<10)
	c := chunker.ChunkCID(data)
	e.auth.register(1, spBag, c, uint64(len(data)))
	s := spRawStream(t, e)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p2p.WriteMsg(s, &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, ObjectId: 1, Cid: c.Bytes(), Length: uint64(len(data))}}}))
	spExpect(t, s, pb.Status_STATUS_AGREED)
	must(p2p.WriteMsg(s, &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Segments{Segments: &pb.StoreChunkSegments{
		SegmentSize: store.MaxSegmentSize, Hashes: [][]byte{c.Hash()[2:]}}}}))
	spExpect(t, s, pb.Status_STATUS_SEGMENTS_OK)
	// A data frame announcing more than the limit: the provider must reset
	// the stream before reading (or allocating) the body.
	frame := protowire.AppendVarint(nil, store.MaxFrame+1)
	frame = append(frame, data...)
	if _, err := s.Write(frame); err == nil { // or the reset already arrived
		var r pb.StoreReply
		if err := p2p.ReadMsg(s, &r, 0); err == nil {
			t.Fatalf("provider answered %v to an oversized frame", r.Status)
		}
	}
	if held, _ := e.bs.Has(c); held {
		t.Fatal("chunk stored from an oversized frame")
	}

	// A segment that does not match its hash fails the exchange, stores nothing.
	s = spRawStream(t, e)
	must(p2p.WriteMsg(s, &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, ObjectId: 1, Cid: c.Bytes(), Length: uint64(len(data))}}}))
	spExpect(t, s, pb.Status_STATUS_AGREED)
	hashes := make([][]byte, 0)
	for off := 0; off < len(data); off += 16 << 10 {
		h := chunker.ChunkCID(data[off:min(off+16<<10, len(data))]).Hash()[2:]
		hashes = append(hashes, h)
	}
	must(p2p.WriteMsg(s, &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Segments{Segments: &pb.StoreChunkSegments{
		SegmentSize: 16 << 10, Hashes: hashes}}}))
	spExpect(t, s, pb.Status_STATUS_SEGMENTS_OK)
	bad := bytes.Clone(data)
	bad[40<<10] ^= 1
	must(p2p.WriteMsg(s, &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Data{Data: &pb.StoreChunkData{Data: bad, Last: true}}}))
	r2 := spExpect(t, s, pb.Status_STATUS_FAILED)
	if !strings.Contains(r2.Reason, "segment 2") {
		t.Fatalf("reason %q", r2.Reason)
	}
	if held, _ := e.bs.Has(c); held {
		t.Fatal("chunk with a bad segment stored")
	}
}

// A panic in a store worker (here the Authorizer) fails the exchange and
// resets the stream instead of crashing the node; the stream framework counts
// it, and the handler keeps serving.
func TestStoreWorkerPanicRecovered(t *testing.T) {
	e := newSPEnv(t)
	data := spRand(11, 100<<10)
	res := e.spObjectData(t, 1, data, 64<<10)
	e.auth.mu.Lock()
	e.auth.panicObj = 1
	e.auth.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.open(t)
	if _, err := s.Push(ctx, spPush(t, res, data, 1, 0)); err == nil {
		t.Fatal("Push succeeded through a panicking Authorizer")
	}
	if n := spCounter(t, e.p2pReg, "satchel_p2p_handler_failures_total", "protocol", string(p2p.StoreProtocol), "kind", "panic"); n != 1 {
		t.Fatalf("panics counted for the store protocol = %v, want 1", n)
	}
	e.auth.mu.Lock()
	e.auth.panicObj = 0
	e.auth.mu.Unlock()
	s2 := e.open(t)
	if _, err := s2.Push(ctx, spPush(t, res, data, 1, 0)); err != nil {
		t.Fatalf("Push after a recovered panic: %v", err)
	}
}

func TestPushCancelledKeepsStreamUsable(t *testing.T) {
	e := newSPEnv(t)
	data := spRand(9, 1<<20)
	res := e.spObjectData(t, 1, data, 64<<10)
	s := e.open(t, store.WithWindow(4))
	cctx, cancel := context.WithCancel(context.Background())
	var abandoned atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Push(cctx, spPush(t, res, data, 1, i)); errors.Is(err, context.Canceled) {
				abandoned.Add(1)
			}
		}()
	}
	cancel()
	wg.Wait()
	// The abandoned exchanges end in the background and free their slots:
	// every chunk can still be pushed over the same stream.
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	for i := range res.Chunks {
		if _, err := s.Push(ctx, spPush(t, res, data, 1, i)); err != nil {
			t.Fatalf("chunk %d after %d cancelled pushes: %v", i, abandoned.Load(), err)
		}
	}
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); err != nil {
		t.Fatal(err)
	}
}

// spExampleAuth authorises one object whose content ID it knows.
type spExampleAuth struct {
	root cid.Cid
	size uint64
}

func (a spExampleAuth) AuthorizeChunk(_ context.Context, bag string, obj uint64) (cid.Cid, error) {
	if bag != "dynamic:channel:1" || obj != 1 {
		return cid.Undef, fmt.Errorf("object %d is not registered in bag %s", obj, bag)
	}
	return a.root, nil
}

func (spExampleAuth) AuthorizeSession(context.Context, string, uint64) error {
	return errors.New("streamed uploads are not accepted here")
}

// Push an object to a provider over one store stream, bind it, and read it
// back over the fetch protocol.
func ExampleOpen() {
	ctx := context.Background()
	newHost := func() *p2p.Host {
		h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(spDiscard))
		if err != nil {
			panic(err)
		}
		return h
	}
	uploader, node := newHost(), newHost()
	defer uploader.Close()
	defer node.Close()
	if err := uploader.Connect(ctx, node.AddrInfo()); err != nil {
		panic(err)
	}

	// The object: 600 KB in 256 KiB chunks, registered on chain as object 1.
	data := spRand(1, 600_000)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(256<<10))
	if err != nil {
		panic(err)
	}

	// The provider's side: a block store and the two handlers.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	bs, err := blockstore.Open(dir, blockstore.WithLogger(spDiscard))
	if err != nil {
		panic(err)
	}
	defer bs.Close()
	key := node.Libp2p().Peerstore().PrivKey(node.ID())
	sh := store.NewHandler(bs.ForProtocols(), spExampleAuth{res.Root, uint64(res.Size)}, key, store.WithLogger(spDiscard),
		store.WithObjectBound(func(bag string, obj uint64) { fmt.Println("bound object", obj, "of", bag) }))
	sh.Register(node.Protocol())
	defer sh.Close()
	fh := fetch.NewHandler(bs.ForProtocols(), &spPolicy{}, fetch.WithLogger(spDiscard))
	fh.Register(node.Protocol())
	defer fh.Close()

	// The uploader's side: push every chunk (concurrently in real use), bind.
	s, err := store.Open(ctx, uploader.Libp2p(), node.ID())
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for i, c := range res.Chunks {
		proof, _ := res.Proof(i)
		receipt, err := s.Push(ctx, store.ChunkPush{Bag: "dynamic:channel:1", Object: 1, Index: i,
			CID: c.CID, Data: data[c.Offset : c.Offset+int64(c.Size)], Proof: proof})
		if err != nil {
			panic(err)
		}
		fmt.Printf("chunk %d: receipt signed by the provider: %v\n", i, store.VerifyReceipt(receipt, node.ID()) == nil)
	}
	if err := s.Bind(ctx, store.BindRequest{Bag: "dynamic:channel:1", Object: 1, Chunks: res.Chunks}); err != nil {
		panic(err)
	}

	// Anyone can now read the blocks back, verified against their CIDs.
	f := fetch.NewClient(uploader.Libp2p())
	defer f.Close()
	var got []byte
	for _, c := range res.Chunks {
		b, err := f.GetBlock(ctx, node.ID(), c.CID)
		if err != nil {
			panic(err)
		}
		got = append(got, b...)
	}
	fmt.Println("read back intact:", bytes.Equal(got, data))
	// Output:
	// chunk 0: receipt signed by the provider: true
	// chunk 1: receipt signed by the provider: true
	// chunk 2: receipt signed by the provider: true
	// bound object 1 of dynamic:channel:1
	// read back intact: true
}

// spSteps records the steps of one push.
type spSteps struct {
	mu    sync.Mutex
	steps []store.PushStep
}

func (r *spSteps) add(s store.PushStep) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}

func (r *spSteps) get() []store.PushStep {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.PushStep(nil), r.steps...)
}

func TestPushSteps(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(11, 600<<10)
	res := e.spObjectData(t, 1, data, 256<<10)
	s := e.open(t, store.WithSegmentSize(64<<10))
	fresh := []store.PushStep{store.PushRequested, store.PushAgreed, store.PushSegmentsSent,
		store.PushDataSent, store.PushSignSent, store.PushSegmentsAccepted,
		store.PushDataReceived, store.PushSigned}
	for _, tc := range []struct {
		name    string
		push    store.ChunkPush
		want    []store.PushStep
		refused bool
	}{
		{"fresh", spPush(t, res, data, 1, 0), fresh, false},
		{"fresh last chunk", spPush(t, res, data, 1, 2), fresh, false},
		{"duplicate", spPush(t, res, data, 1, 0), []store.PushStep{store.PushRequested,
			store.PushAlreadyStored, store.PushSignSent, store.PushSigned}, false},
		{"unregistered object", spPush(t, res, data, 99, 1), []store.PushStep{store.PushRequested}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec spSteps
			tc.push.OnStep = rec.add
			_, err := s.Push(ctx, tc.push)
			var refused *store.RefusedError
			if tc.refused != errors.As(err, &refused) || (!tc.refused && err != nil) {
				t.Fatalf("push: %v (refusal wanted: %v)", err, tc.refused)
			}
			if got := rec.get(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
		})
	}
	// No hook: the push works as before.
	if _, err := s.Push(ctx, spPush(t, res, data, 1, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestPushStepsScripted follows the answers a real provider gives only in
// a race (ALREADY_STORED in place of SEGMENTS_OK: another upload stored
// the chunk meanwhile) or on bad bytes, from a provider scripted to give
// them.
func TestPushStepsScripted(t *testing.T) {
	e := newSPEnv(t)
	key := e.provider.Peerstore().PrivKey(e.provider.ID())
	data := spRand(12, 10<<10)
	res := e.spObjectData(t, 1, data, 64<<10)
	push := spPush(t, res, data, 1, 0)
	sent := []store.PushStep{store.PushRequested, store.PushAgreed,
		store.PushSegmentsSent, store.PushDataSent, store.PushSignSent}
	for _, tc := range []struct {
		name    string
		after   []pb.Status // answers once SIGN is read
		want    []store.PushStep
		refused bool
	}{
		{"already stored after segments", []pb.Status{pb.Status_STATUS_ALREADY_STORED, pb.Status_STATUS_SIGNED},
			append(append([]store.PushStep(nil), sent...), store.PushAlreadyStored, store.PushSigned), false},
		{"failed after data", []pb.Status{pb.Status_STATUS_SEGMENTS_OK, pb.Status_STATUS_FAILED},
			append(append([]store.PushStep(nil), sent...), store.PushSegmentsAccepted), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := make(chan error, 1)
			e.provider.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
				defer s.Close()
				served <- spScript(s, key, tc.after)
			})
			s := e.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var rec spSteps
			p := push
			p.OnStep = rec.add
			_, err := s.Push(ctx, p)
			var refused *store.RefusedError
			if tc.refused != errors.As(err, &refused) || (!tc.refused && err != nil) {
				t.Fatalf("push: %v (refusal wanted: %v)", err, tc.refused)
			}
			if got := rec.get(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
			if err := <-served; err != nil {
				t.Fatalf("scripted provider: %v", err)
			}
		})
	}
}

// spScript answers one chunk exchange: AGREED to the request, then the
// given answers once SIGN arrived, a SIGNED one with a receipt for the
// chunk.
func spScript(s network.Stream, key crypto.PrivKey, after []pb.Status) error {
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
	for _, st := range after {
		r := &pb.StoreReply{Id: id, Status: st, Reason: "scripted"}
		if st == pb.Status_STATUS_SIGNED {
			r.Receipt = spAnswer(cr)
			if err := store.SignReceipt(key, r.Receipt); err != nil {
				return err
			}
		}
		if err := p2p.WriteMsg(s, r); err != nil {
			return err
		}
	}
	return nil
}
