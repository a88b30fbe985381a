package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// This file is an in-process harness for the client's own logic: a fake
// data directory and fake providers whose store and fetch sides are called
// directly through the client's seams (openConn, fetch), on real loopback
// hosts so that locating and connecting are the real code. The integration
// tests (integration_test.go) run the real providers of package testnet.

var quietLog = slog.New(slog.DiscardHandler)

// fakeChain is an in-memory data directory.
type fakeChain struct {
	mu      sync.Mutex
	cond    *sync.Cond
	height  int64
	bags    map[chain.BagID]chain.Bag
	buckets map[chain.StorageBucketID]chain.StorageBucket
	objects map[chain.ObjectID]chain.DataObject
	nextID  chain.ObjectID
	params  chain.Params
	submits atomic.Int32
	// bucketReads counts reads of each storage bucket; the first
	// unpublished[id] of them name no operator (a read a block behind
	// the operator's publishing its node).
	bucketReads map[chain.StorageBucketID]int
	unpublished map[chain.StorageBucketID]int
}

func newFakeChain() *fakeChain {
	f := &fakeChain{
		bags:    map[chain.BagID]chain.Bag{},
		buckets: map[chain.StorageBucketID]chain.StorageBucket{},
		objects: map[chain.ObjectID]chain.DataObject{},
		nextID:  0,

		bucketReads: map[chain.StorageBucketID]int{},
		unpublished: map[chain.StorageBucketID]int{},
	}
	f.params.Limits.MaxDataObjectSize = 1 << 40
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeChain) tick() {
	f.height++
	f.cond.Broadcast()
}

func (f *fakeChain) Bag(_ context.Context, id chain.BagID) (chain.Bag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bags[id]
	if !ok {
		return b, chain.Errorf(chain.ErrBagNotFound, "bag %s does not exist", id)
	}
	return b, nil
}

func (f *fakeChain) Bags(context.Context) ([]chain.Bag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chain.Bag
	for _, b := range f.bags {
		out = append(out, b)
	}
	return out, nil
}

func (f *fakeChain) StorageBucket(_ context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[id]
	if !ok {
		return b, chain.ErrStorageBucketNotFound
	}
	f.bucketReads[id]++
	if f.bucketReads[id] <= f.unpublished[id] {
		b.Metadata = nil
	}
	return b, nil
}

func (f *fakeChain) StorageBuckets(context.Context) ([]chain.StorageBucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chain.StorageBucket
	for i := range chain.StorageBucketID(len(f.buckets)) {
		out = append(out, f.buckets[i])
	}
	return out, nil
}

func (f *fakeChain) DataObject(_ context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[id]
	if !ok || o.Bag != bag {
		return o, chain.Errorf(chain.ErrObjectNotFound, "data object %d does not exist in bag %s", id, bag)
	}
	return o, nil
}

func (f *fakeChain) Objects(_ context.Context, bag chain.BagID) ([]chain.DataObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chain.DataObject
	for i := range f.nextID {
		if o, ok := f.objects[i]; ok && o.Bag == bag {
			out = append(out, o)
		}
	}
	return out, nil
}

func (f *fakeChain) Params(context.Context) (chain.Params, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.params, nil
}

func (f *fakeChain) Submit(_ context.Context, _ chain.Key, msg chain.Msg) (chain.Committed, error) {
	f.submits.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := msg.(chain.MsgRegisterDataObjects)
	if !ok {
		return chain.Committed{}, chain.ErrUnknownMsg
	}
	if f.params.UploadingBlocked {
		return chain.Committed{}, chain.Errorf(chain.ErrUploadingBlocked, "uploading is blocked")
	}
	if _, ok := f.bags[m.Bag]; !ok {
		return chain.Committed{}, chain.Errorf(chain.ErrBagNotFound, "bag %s does not exist", m.Bag)
	}
	bag := f.bags[m.Bag]
	bag.ObjectsCount += uint64(len(m.Objects))
	f.bags[m.Bag] = bag
	ev := chain.ObjectsRegistered{Bag: m.Bag}
	for _, s := range m.Objects {
		o := chain.DataObject{ID: f.nextID, Bag: m.Bag, Size: s.Size, ContentID: s.ContentID}
		f.objects[o.ID] = o
		f.nextID++
		ev.Objects = append(ev.Objects, o)
	}
	f.tick()
	return chain.Committed{Height: f.height, Result: chain.TxResult{Events: []chain.Event{chain.NewEvent(ev)}}}, nil
}

func (f *fakeChain) accept(id chain.ObjectID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.objects[id]; ok && !o.Accepted {
		o.Accepted = true
		f.objects[id] = o
		f.tick()
	}
}

func (f *fakeChain) Transport() chain.Transport { return fakeTransport{f} }

type fakeTransport struct{ f *fakeChain }

func (t fakeTransport) Query(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("fake")
}
func (t fakeTransport) BroadcastTx(context.Context, []byte) (chain.Committed, error) {
	return chain.Committed{}, errors.New("fake")
}
func (t fakeTransport) BlockEvents(context.Context, int64) (chain.BlockEvents, error) {
	return chain.BlockEvents{}, errors.New("fake")
}
func (t fakeTransport) LatestHeight(context.Context) (int64, error) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.f.height, nil
}
func (t fakeTransport) WaitForHeight(ctx context.Context, h int64) error {
	stop := context.AfterFunc(ctx, func() {
		t.f.mu.Lock()
		t.f.cond.Broadcast()
		t.f.mu.Unlock()
	})
	defer stop()
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for t.f.height < h {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.f.cond.Wait()
	}
	return nil
}
func (t fakeTransport) Close() error { return nil }

// fakeProvider stores chunks in memory and answers the client's seams.
type fakeProvider struct {
	host  *p2p.Host
	key   crypto.PrivKey
	chain *fakeChain

	mu      sync.Mutex
	blocks  map[cid.Cid][]byte
	objects map[uint64]bool
	dead    bool
	lie     bool
	pushes  int                           // Push calls
	stores  int                           // pushes whose bytes the provider did not hold yet
	drops   []string                      // bags of the sessions dropped
	hook    func(c store.ChunkPush) error // called before a push is stored
	binds   int                           // Bind calls
	// bindHook, when set, is called first by every Bind: its error is the
	// answer.
	bindHook func() error
}

func (p *fakeProvider) id() peer.ID { return p.host.ID() }

func (p *fakeProvider) kill() {
	p.mu.Lock()
	p.dead = true
	p.mu.Unlock()
}

func (p *fakeProvider) pushCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pushes
}

// storeCount returns how many pushes carried bytes the provider lacked.
func (p *fakeProvider) storeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stores
}

// fakeConn is one client stream to a fake provider.
type fakeConn struct{ p *fakeProvider }

// Push answers like a provider and reports the steps
// store.Stream.Push would (ChunkPush.OnStep).
func (c fakeConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	step := func(s store.PushStep) {
		if ch.OnStep != nil {
			ch.OnStep(s)
		}
	}
	p := c.p
	p.mu.Lock()
	dead, hook := p.dead, p.hook
	p.pushes++
	p.mu.Unlock()
	if dead {
		return nil, errors.New("stream reset")
	}
	step(store.PushRequested)
	if hook != nil {
		if err := hook(ch); err != nil {
			return nil, err
		}
	}
	if ch.Session == nil {
		if _, err := p.chain.DataObject(ctx, p.chain.bagOf(chain.ObjectID(ch.Object)), chain.ObjectID(ch.Object)); err != nil {
			return nil, &store.RefusedError{Status: storepb.Status_STATUS_REFUSED, Reason: "object not registered"}
		}
	}
	p.mu.Lock()
	_, held := p.blocks[ch.CID]
	p.mu.Unlock()
	if held {
		step(store.PushAlreadyStored)
		step(store.PushSignSent)
	} else {
		step(store.PushAgreed)
		step(store.PushSegmentsSent)
		step(store.PushDataSent)
		step(store.PushSignSent)
		step(store.PushSegmentsAccepted)
		if err := chunker.VerifyChunk(ch.CID, ch.Data); err != nil {
			return nil, &store.RefusedError{Status: storepb.Status_STATUS_FAILED, Reason: err.Error()}
		}
		p.mu.Lock()
		p.blocks[ch.CID] = bytes.Clone(ch.Data)
		p.stores++
		p.mu.Unlock()
		step(store.PushDataReceived)
	}
	r := &storepb.Receipt{Cid: ch.CID.Bytes(), ObjectId: ch.Object, BagId: ch.Bag, StoredAtUnix: time.Now().Unix(), ExpiryUnix: ch.Expiry.Unix()}
	if err := store.SignReceipt(p.key, r); err != nil {
		return nil, err
	}
	step(store.PushSigned)
	return r, nil
}

func (c fakeConn) Bind(ctx context.Context, b store.BindRequest) error {
	p := c.p
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return errors.New("stream reset")
	}
	p.binds++
	if p.bindHook != nil {
		if err := p.bindHook(); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	bld := chunker.NewBuilder()
	for _, ch := range b.Chunks {
		if _, ok := p.blocks[ch.CID]; !ok {
			p.mu.Unlock()
			return &store.RefusedError{Status: storepb.Status_STATUS_FAILED, Reason: "missing chunk " + ch.CID.String()}
		}
		if err := bld.Add(ch.CID, ch.Size); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	res, err := bld.Finish()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	for _, n := range res.Nodes {
		p.blocks[n.CID] = n.Data
	}
	p.objects[b.Object] = true
	p.mu.Unlock()
	obj, err := p.chain.DataObject(ctx, chain.BagID(b.Bag), chain.ObjectID(b.Object))
	if err != nil {
		return &store.RefusedError{Status: storepb.Status_STATUS_FAILED, Reason: err.Error()}
	}
	if obj.ContentID != res.Root.String() {
		return &store.RefusedError{Status: storepb.Status_STATUS_FAILED, Reason: "root mismatch"}
	}
	p.chain.accept(obj.ID)
	return nil
}

// Drop records the session given up.
func (c fakeConn) Drop(_ context.Context, session []byte, bag string) error {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errors.New("stream reset")
	}
	p.drops = append(p.drops, bag)
	return nil
}

func (c fakeConn) Close() error { return nil }

func (f *fakeChain) bagOf(id chain.ObjectID) chain.BagID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[id].Bag
}

// fakeFetch routes the client's fetch calls to the fake providers.
type fakeFetch struct{ net *fakeNet }

func (f fakeFetch) provider(id peer.ID) *fakeProvider {
	for _, p := range f.net.providers {
		if p.id() == id {
			return p
		}
	}
	return nil
}

func (f fakeFetch) Have(_ context.Context, id peer.ID, cids []cid.Cid) ([]bool, error) {
	p := f.provider(id)
	if p == nil {
		return nil, errors.New("unknown peer")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return nil, errors.New("stream reset")
	}
	out := make([]bool, len(cids))
	for i, c := range cids {
		_, out[i] = p.blocks[c]
	}
	return out, nil
}

func (f fakeFetch) ReadBlock(ctx context.Context, id peer.ID, c cid.Cid) (fetch.Block, error) {
	data, err := f.getBlock(ctx, id, c)
	return fetch.Block{Data: data}, err
}

func (f fakeFetch) getBlock(_ context.Context, id peer.ID, c cid.Cid) ([]byte, error) {
	p := f.provider(id)
	if p == nil {
		return nil, errors.New("unknown peer")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return nil, errors.New("stream reset")
	}
	b, ok := p.blocks[c]
	if !ok {
		return nil, fmt.Errorf("block %s: %w", c, fetch.ErrNotServed)
	}
	if p.lie {
		b = bytes.Repeat([]byte{'x'}, len(b))
	}
	return bytes.Clone(b), nil
}

// fakeNet is a fake chain, a bag stored by n buckets, and one fake provider
// per bucket.
type fakeNet struct {
	t         testing.TB
	chain     *fakeChain
	bag       chain.BagID
	providers []*fakeProvider
	key       chain.Key
}

func newFakeNet(t testing.TB, n int) *fakeNet {
	t.Helper()
	fc := newFakeChain()
	net := &fakeNet{t: t, chain: fc, bag: chain.ChannelBag(1)}
	bag := chain.Bag{ID: net.bag}
	for i := range n {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		h, err := p2p.New(ctx, p2p.WithIdentity(key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		p := &fakeProvider{host: h, key: key, chain: fc, blocks: map[cid.Cid][]byte{}, objects: map[uint64]bool{}}
		net.providers = append(net.providers, p)
		var addrs []string
		for _, a := range h.Addrs() {
			addrs = append(addrs, a.String())
		}
		w := chain.WorkerID(i)
		id := chain.StorageBucketID(i)
		fc.buckets[id] = chain.StorageBucket{ID: id, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: h.ID().String(), Multiaddrs: addrs}}
		bag.StorageBuckets = append(bag.StorageBuckets, id)
	}
	fc.bags[net.bag] = bag
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	net.key = k
	return net
}

// client returns a client of the fake network with its state in dir.
func (n *fakeNet) client(dir string, opts ...Option) *Client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = h.Close() })
	c, err := New(Config{Chain: n.chain, Key: n.key, Host: h, StateDir: dir, ChunkSize: 64 << 10}, opts...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = c.Close() })
	c.openConn = func(_ context.Context, id peer.ID) (storeConn, error) {
		for _, p := range n.providers {
			if p.id() == id {
				p.mu.Lock()
				dead := p.dead
				p.mu.Unlock()
				if dead {
					return nil, errors.New("connection refused")
				}
				return fakeConn{p}, nil
			}
		}
		return nil, errors.New("unknown peer")
	}
	c.fetch, c.fetchVerifies = fakeFetch{n}, false
	return c
}

// PushPipeline stores the chunk like Push and forwards nothing, as a
// provider that predates pipelining: every hop is ErrNotForwarded.
func (c fakeConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	return c.headOnly(ctx, ch, store.ErrNotForwarded)
}

// headOnly stores the chunk like Push, forwards it to no hop and reports
// each hop failed with hopErr.
func (c fakeConn) headOnly(ctx context.Context, ch store.ChunkPush, hopErr error) (store.PipelineResult, error) {
	fwd := ch.Forward
	ch.Forward = nil
	r, err := c.Push(ctx, ch)
	if err != nil {
		return store.PipelineResult{}, err
	}
	res := store.PipelineResult{Receipts: []store.HopReceipt{{Peer: c.p.id(), Receipt: r}}}
	for _, h := range fwd {
		res.Failed = append(res.Failed, store.HopError{Peer: h.Peer, Err: hopErr})
	}
	return res, nil
}
