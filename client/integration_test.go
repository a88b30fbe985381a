package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	fetchpb "github.com/satchel-net/satchel/protocol/fetch/pb"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// These tests run the client against a whole network in the test process:
// the embedded chain and real storage providers (package testnet) over
// loopback TCP.

const itChunk = 256 << 10

// netClient returns a client of net with its upload state in dir, on a
// host of its own that bootstraps from the running providers.
func netClient(t testing.TB, net *testnet.Network, dir string, opts ...Option) *Client {
	t.Helper()
	var boot []peer.AddrInfo
	for _, p := range net.Providers() {
		if p.Running() {
			boot = append(boot, p.AddrInfo())
		}
	}
	ctx := testCtx(t)
	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(boot...), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := New(Config{Chain: net.Client, Key: net.Member, Host: h, StateDir: dir, ChunkSize: itChunk}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNetworkPutGet(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir())
	ctx := testCtx(t)
	data := randomBytes(t, 12<<20+333, 11)
	lp := &lastProgress{t: t}
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(3), WithProgress(lp.fn))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("object %d %s", obj.ID, obj.CID)
	if len(obj.Providers) != 3 || obj.Size != int64(len(data)) {
		t.Fatalf("object %+v", obj)
	}
	for _, p := range net.Providers() {
		if !p.Holds(obj.ID) {
			t.Fatalf("provider %d does not hold object %d", p.Index, obj.ID)
		}
	}
	if o, err := net.Client.DataObject(ctx, net.Bag, obj.ID); err != nil || !o.Accepted || o.ContentID != obj.CID.String() {
		t.Fatalf("chain object %+v %v", o, err)
	}
	if p := lp.get(); p.File != FileAccepted || p.Links[LinkSigned] != 3*p.TotalChunks {
		t.Fatalf("progress %+v", p)
	}

	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get returned other bytes")
	}
	out.Reset()
	off, n := int64(itChunk-100), int64(3*itChunk+7)
	if _, err := c.GetRange(ctx, CIDRef(obj.CID, net.Bag), off, n, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data[off:off+n]) {
		t.Fatal("ranged get returned other bytes")
	}

	// A streamed upload through the session protocol.
	small := randomBytes(t, 3*itChunk+5, 12)
	u, err := c.Upload(ctx, net.Bag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(u, io.MultiReader(bytes.NewReader(small))); err != nil {
		t.Fatal(err)
	}
	sobj, err := u.Commit()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := c.Get(ctx, ObjectRef(net.Bag, sobj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), small) {
		t.Fatalf("streamed object read back: %v", err)
	}

	// A full bucket refuses the registration; the error says which and
	// what to do.
	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgSetStorageBucketVoucherLimits{
		Bucket: net.Provider(1).Bucket, ObjectsLimit: 100, SizeLimit: 1 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Put(ctx, net.Bag, bytes.NewReader(data[:2<<20]))
	if !errors.Is(err, chain.ErrBucketFull) || !strings.Contains(err.Error(), "is full by size") || !strings.Contains(err.Error(), "raise its size limit") {
		t.Fatalf("full bucket: %v", err)
	}
	t.Log(err)
}

// liar is a peer that speaks /satchel/fetch/1.0.0 with the real wire
// messages but answers every GET with bytes of the right length that do not
// match the CID.
type liar struct {
	host *p2p.Host
	gets atomic.Int32
}

func newLiar(t testing.TB) *liar {
	t.Helper()
	h, err := p2p.New(testCtx(t), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	l := &liar{host: h}
	h.Protocol().SetHandler(p2p.FetchProtocol, func(ctx context.Context, s network.Stream) error {
		for {
			var req fetchpb.FetchRequest
			if err := p2p.ReadMsg(s, &req, store.MaxFrame); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			reply := &fetchpb.FetchReply{Id: req.GetId(), Status: fetchpb.FetchStatus_FETCH_STATUS_OK}
			switch {
			case req.GetHave() != nil:
				reply.Have = make([]bool, len(req.GetHave().GetCids()))
				for i := range reply.Have {
					reply.Have[i] = true
				}
			case req.GetGet() != nil:
				l.gets.Add(1)
				reply.Data = bytes.Repeat([]byte{0xEE}, itChunk)
				reply.Size = itChunk
			}
			if err := p2p.WriteMsg(s, reply); err != nil {
				return err
			}
		}
	})
	return l
}

func TestNetworkLyingProviderSkipped(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, "")
	ctx := testCtx(t)
	data := randomBytes(t, 8<<20, 13)
	obj, err := c.Put(ctx, net.Bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	l := newLiar(t)
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out, WithPeers(l.host.AddrInfo())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get returned other bytes")
	}
	if l.gets.Load() == 0 {
		t.Fatal("the lying peer was never asked: the test proves nothing")
	}
	t.Logf("the lying peer answered %d GETs before it was skipped", l.gets.Load())
}

func TestNetworkProviderKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir(), WithReconnectWait(time.Second)) // the killed provider stays down
	ctx := testCtx(t)
	data := randomBytes(t, 16<<20, 14)
	var k killer
	victim := net.Provider(2)
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithMinRedundancy(2), WithProgress(func(p Progress) {
		if p.TotalChunks > 0 && p.Links[LinkSigned] >= p.TotalChunks/2 {
			k.kill(t, always(victim))
		}
	}))
	k.wait()
	if err != nil {
		t.Fatal(err)
	}
	if victim.Running() {
		t.Fatal("the provider was not killed during the upload")
	}
	// Completes means: the live providers hold it with receipts, and the
	// chain accepted it.
	if len(obj.Providers) != 2 {
		t.Fatalf("object on %d providers, want the 2 live ones", len(obj.Providers))
	}
	for _, p := range net.Providers()[:2] {
		if !p.Holds(obj.ID) {
			t.Fatalf("provider %d does not hold object %d", p.Index, obj.ID)
		}
	}
	if o, err := net.Client.DataObject(ctx, net.Bag, obj.ID); err != nil || !o.Accepted {
		t.Fatalf("chain object %+v %v", o, err)
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
}

// TestNetworkLinkStates follows one storage link to a real provider
// through every StorageLink state, and a chunk the provider already holds
// from created to data received.
func TestNetworkLinkStates(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(1))
	data := randomBytes(t, 20<<10, 12) // one chunk, one provider: one link
	for _, tc := range []struct {
		name string
		want []LinkState
	}{
		{"fresh", []LinkState{LinkCreated, LinkAgreed, LinkSendingSegmentMap, LinkSendingData,
			LinkDataReceived, LinkAskingForSignature, LinkSigned}},
		{"already stored", []LinkState{LinkCreated, LinkDataReceived, LinkAskingForSignature, LinkSigned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := netClient(t, net, t.TempDir()) // a fresh journal: the second put pushes again
			c.progressEvery = 0                 // every change reported
			var trail linkTrail
			if _, err := c.Put(testCtx(t), net.Bag, bytes.NewReader(data), WithProgress(trail.fn(t))); err != nil {
				t.Fatal(err)
			}
			if got := trail.get(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("link went %v, want %v", got, tc.want)
			}
		})
	}
}

// countingConns wraps the client's store streams to count pushes.
// countingConns counts the chunk pushes of c's uploads that carried the
// chunk's bytes: the provider agreed to receive them (it did not answer
// "already stored").
func countingConns(c *Client) *atomic.Int32 {
	var n atomic.Int32
	open := c.openConn
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		conn, err := open(ctx, p)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &n}, nil
	}
	return &n
}

type countingConn struct {
	storeConn
	n *atomic.Int32
}

func (c countingConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	c.count(&ch)
	return c.storeConn.Push(ctx, ch)
}

func (c countingConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	c.count(&ch)
	return c.storeConn.PushPipeline(ctx, ch)
}

func (c countingConn) count(ch *store.ChunkPush) {
	step := ch.OnStep
	ch.OnStep = func(s store.PushStep) {
		if s == store.PushDataSent {
			c.n.Add(1)
		}
		if step != nil {
			step(s)
		}
	}
}

func TestNetworkResume(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	dir := t.TempDir()
	data := randomBytes(t, 10<<20, 15)
	path := writeTemp(t, data)
	total := len(data) / itChunk

	// Interrupted while the chunks stream out, before the root is known.
	c1 := netClient(t, net, dir, WithWindow(4))
	first := countingConns(c1)
	ctx, cancel := context.WithCancel(testCtx(t))
	var once sync.Once
	// A third of the chunks signed: a third of the copies when pushed
	// directly, about a third of the chunks on every provider when
	// pipelined (one link per chunk, to the pipeline's head).
	_, err := c1.PutFile(ctx, net.Bag, path, WithProgress(func(p Progress) {
		if p.Links[LinkSigned] >= total/3 {
			once.Do(cancel)
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	_ = c1.Close()

	c2 := netClient(t, net, dir)
	second := countingConns(c2)
	lp := &lastProgress{t: t}
	obj, err := c2.PutFile(testCtx(t), net.Bag, path, WithProgress(lp.fn))
	if err != nil {
		t.Fatal(err)
	}
	if objects, _ := net.Client.Objects(testCtx(t), net.Bag); len(objects) != 1 || objects[0].ID != obj.ID {
		t.Fatalf("objects after resuming: %+v; the content was registered more than once", objects)
	}
	// Every chunk copy the providers held was answered "already stored":
	// the two runs sent each copy about once (those in flight at the
	// interruption may have reached a provider after the first run gave
	// up on them).
	sent1, sent2 := int(first.Load()), int(second.Load())
	if sent2 >= 3*total || sent1+sent2 > 3*total+3*4 {
		t.Fatalf("first run sent %d chunk copies, the second %d, of %d", sent1, sent2, 3*total)
	}
	if lp.get().Resumed == 0 || obj.Resumed != lp.get().Resumed {
		t.Fatalf("resumed %d (progress %d); the first run had stored %d copies", obj.Resumed, lp.get().Resumed, sent1)
	}
	t.Logf("first run sent %d chunk copies, second %d of %d; %d chunks resumed", sent1, sent2, 3*total, obj.Resumed)
	var out bytes.Buffer
	if _, err := c2.Get(testCtx(t), ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
}

// TestNetworkUploadSpoolsWithoutContract writes a streamed upload of
// unknown size on real providers, which take chunks of an unregistered
// object only under a storage contract: nothing reaches them before Commit
// (the stream is spooled), an aborted upload leaves nothing behind, and a
// committed one is registered first, pushed with proofs and reads back.
func TestNetworkUploadSpoolsWithoutContract(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(2))
	c := netClient(t, net, t.TempDir())
	data := randomBytes(t, 40*itChunk, 21)
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(itChunk))
	if err != nil {
		t.Fatal(err)
	}
	held := func(p *testnet.Provider) int {
		n := 0
		for _, ch := range res.Chunks {
			if ok, _ := p.Store().Has(ch.CID); ok {
				n++
			}
		}
		return n
	}
	u, err := c.Upload(testCtx(t), net.Bag, WithChunkSize(itChunk))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort() // a no-op after the Abort below; keeps Close from waiting on a failed test
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	u.Abort()
	for _, p := range net.Providers() {
		if n := held(p); n != 0 {
			t.Fatalf("provider %d holds %d chunks of an aborted upload that had no contract", p.Index, n)
		}
	}
	u, err = c.Upload(testCtx(t), net.Bag, WithChunkSize(itChunk))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(u, io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	obj, err := u.Commit()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := c.Get(testCtx(t), ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("spooled upload read back: %v", err)
	}
}

// TestNetworkSpareReplacesLostProvider puts a file with N=2 on a bag of
// three providers and kills one of the two while the file streams out: the
// third, a spare, gets every chunk read again from the file (object mode,
// with proofs the real provider checks against the chain) and binds, so
// the object ends on two live providers and reads back byte-exact.
func TestNetworkSpareReplacesLostProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir(), WithReconnectWait(time.Second)) // the killed provider stays down
	var mu sync.Mutex
	var opened []peer.ID
	open := c.openConn
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		mu.Lock()
		opened = append(opened, p)
		mu.Unlock()
		return open(ctx, p)
	}
	data := randomBytes(t, 24*itChunk, 22)
	var once sync.Once
	var victim *testnet.Provider
	var wg sync.WaitGroup
	obj, err := c.PutFile(testCtx(t), net.Bag, writeTemp(t, data), WithRedundancy(2), WithChunkSize(itChunk), WithProgress(func(p Progress) {
		if p.Links[LinkSigned] < 8 {
			return
		}
		once.Do(func() {
			mu.Lock()
			first := opened[0]
			mu.Unlock()
			for _, pr := range net.Providers() {
				if pr.AddrInfo().ID == first {
					victim = pr
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := victim.Kill(); err != nil {
					t.Error(err)
				}
			}()
		})
	}))
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if victim == nil || victim.Running() {
		t.Fatal("no provider was killed during the upload")
	}
	if len(obj.Providers) != 2 {
		t.Fatalf("object on %d providers, want 2", len(obj.Providers))
	}
	mu.Lock()
	distinct := map[peer.ID]bool{}
	for _, p := range opened {
		distinct[p] = true
	}
	mu.Unlock()
	if len(distinct) != 3 {
		t.Fatalf("store streams opened to %d providers; the spare was never used", len(distinct))
	}
	for _, p := range net.Providers() {
		if p == victim {
			continue
		}
		if !p.Holds(obj.ID) {
			t.Fatalf("live provider %d does not hold object %d", p.Index, obj.ID)
		}
		if slices.Contains(obj.Providers, victim.AddrInfo().ID) {
			t.Fatal("the dead provider is listed")
		}
	}
	var out bytes.Buffer
	if _, err := c.Get(testCtx(t), ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
}
