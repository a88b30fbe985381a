package provider_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/testnet"
)

// Every test here runs a real network: the embedded chain, three providers
// on loopback libp2p hosts and their block stores in temporary directories.
// Conditions are waited for with deadlines; nothing sleeps.

// fastOptions make the retry clocks of the providers short, so what waits
// for a retry (a cleanup waiting for confirmations, a pending object with
// no source yet) happens within a test's patience.
func fastOptions() []provider.Option {
	return []provider.Option{
		provider.WithReconcileInterval(300 * time.Millisecond),
		provider.WithServeGrace(0),
		provider.WithAcceptBatch(50*time.Millisecond, 100),
		provider.WithFetchTimeout(5 * time.Second),
		provider.WithDeletionGrace(0),
	}
}

func newNet(t *testing.T, opts ...testnet.Option) *testnet.Network {
	t.Helper()
	return testnet.New(t, append([]testnet.Option{testnet.ProviderOptions(fastOptions()...)}, opts...)...)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// accepted reports whether the chain shows obj accepted.
func accepted(net *testnet.Network, obj chain.DataObject) func() bool {
	return func() bool {
		o, err := net.Client.DataObject(context.Background(), obj.Bag, obj.ID)
		return err == nil && o.Accepted
	}
}

func holds(p *testnet.Provider, obj chain.DataObject) func() bool {
	return func() bool { return p.Holds(obj.ID) }
}

func holdsNot(p *testnet.Provider, obj chain.DataObject) func() bool {
	return func() bool {
		bs := p.Store()
		if bs == nil {
			return false
		}
		_, ok, err := bs.Manifest(uint64(obj.ID))
		return err == nil && !ok
	}
}

// readBack reads every chunk of data's DAG from provider p through the
// fetch protocol and checks the bytes.
func readBack(t *testing.T, net *testnet.Network, p *testnet.Provider, data []byte, chunkSize int) {
	t.Helper()
	ctx := testCtx(t)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, p.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	for i, c := range res.Chunks {
		got, err := fc.GetBlock(ctx, p.AddrInfo().ID, c.CID)
		if err != nil {
			t.Fatalf("provider %d: chunk %d: %v", p.Index, i, err)
		}
		if !bytes.Equal(got, data[c.Offset:c.Offset+int64(c.Size)]) {
			t.Fatalf("provider %d: chunk %d differs", p.Index, i)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	if reg == nil {
		return 0
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// An object pushed to one provider and bound there is accepted on chain by
// that provider and synced to the other two, which then serve every chunk.
// A one-chunk object (its root is its chunk) and an object whose DAG has
// two levels of interior nodes both go through.
func TestUploadAcceptedAndSynced(t *testing.T) {
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
	}))
	ctx := testCtx(t)

	const chunkSize = 1 << 10
	big := randomBytes(t, 200*chunkSize+123) // > 174 chunks: two DAG levels
	small := randomBytes(t, 700)
	objBig, err := net.UploadChunked(ctx, big, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	objSmall, err := net.UploadChunked(ctx, small, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "objects accepted on chain", func() bool { return accepted(net, objBig)() && accepted(net, objSmall)() })
	for _, p := range net.Providers()[1:] {
		testnet.Wait(t, "provider synced the objects", func() bool { return p.Holds(objBig.ID) && p.Holds(objSmall.ID) })
		readBack(t, net, p, big, chunkSize)
		readBack(t, net, p, small, chunkSize)
	}
	if got := counter(t, net.Provider(0).Registry(), "satchel_provider_accepted_objects_total", nil); got < 1 {
		t.Errorf("provider 0 accepted %v objects, want at least 1", got)
	}

	// The status page reports what provider 2 holds.
	srv := net.Provider(2).Server()
	resp, err := http.Get("http://" + srv.StatusAddr() + provider.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st provider.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Objects != 2 || st.Bucket != uint64(net.Provider(2).Bucket) || st.PeerID != net.Provider(2).AddrInfo().ID.String() ||
		len(st.Bags) != 1 || st.Bags[0].ID != string(net.Bag) || !st.Bags[0].Assigned || st.ChainHeight == 0 {
		t.Errorf("status = %+v", st)
	}
	// The disk it stores on, in the status and as gauges.
	if st.Disk == nil || st.Disk.Free == 0 || st.Disk.Used == 0 {
		t.Errorf("status disk = %+v, want free and used bytes", st.Disk)
	}
	reg := net.Provider(2).Registry()
	if counter(t, reg, "satchel_provider_disk_free_bytes", nil) == 0 || counter(t, reg, "satchel_provider_disk_used_bytes", nil) == 0 {
		t.Error("no disk_free_bytes or disk_used_bytes gauge")
	}
	mresp, err := http.Get("http://" + srv.StatusAddr() + provider.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	mresp.Body.Close()
	if mresp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %s", mresp.Status)
	}
}

// A provider that was down while objects were uploaded syncs them when it
// comes back, and resumes following the chain from the height it saved.
func TestRestartedProviderSyncsBack(t *testing.T) {
	net := newNet(t)
	ctx := testCtx(t)
	p2 := net.Provider(2)
	if err := p2.Kill(); err != nil {
		t.Fatal(err)
	}
	var objs []chain.DataObject
	for range 3 {
		o, err := net.UploadChunked(ctx, randomBytes(t, 40<<10), 8<<10, 0)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	for _, o := range objs {
		testnet.Wait(t, "accepted", accepted(net, o))
		testnet.Wait(t, "provider 1 synced", holds(net.Provider(1), o))
		if p2.Holds(o.ID) {
			t.Fatal("a stopped provider holds an object")
		}
	}
	state, err := os.ReadFile(filepath.Join(p2.Dir, "provider-state.json"))
	if err != nil {
		t.Fatalf("provider 2 saved no state: %v", err)
	}
	var saved struct{ Height int64 }
	if err := json.Unmarshal(state, &saved); err != nil || saved.Height == 0 {
		t.Fatalf("provider 2 state %s: height not saved (%v)", state, err)
	}

	if err := p2.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		testnet.Wait(t, "restarted provider synced back", holds(p2, o))
	}
}

// A pending object held by one provider only (its accept never happened,
// as if it died right after the upload) is synced by the others, so one
// dead node cannot lose it.
func TestPendingObjectSyncedByPeers(t *testing.T) {
	// Provider 0 stores uploads but never gets round to accepting them:
	// its accept window is an hour.
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.ProviderOptionsFor = func(i int) []provider.Option {
			if i == 0 {
				return []provider.Option{provider.WithAcceptBatch(time.Hour, 1_000_000)}
			}
			return nil
		}
	}))
	ctx := testCtx(t)
	data := randomBytes(t, 50<<10)
	obj, err := net.UploadChunked(ctx, data, 16<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Providers 1 and 2 find the object on provider 0, sync it and accept
	// it themselves.
	for _, p := range net.Providers()[1:] {
		testnet.Wait(t, "peer synced the pending object", holds(p, obj))
	}
	testnet.Wait(t, "accepted by a peer", accepted(net, obj))
}

// Deleting an object on chain removes it from every provider, but not
// while it is being served: a provider with a long serve grace that has
// just served a block keeps the object until the grace ends. The reads go
// through the fetch handler, which records them with the done of the
// policy's ServeRead.
func TestDeletedObjectRemovedEverywhere(t *testing.T) {
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.ProviderOptionsFor = func(i int) []provider.Option {
			if i == 2 {
				return []provider.Option{provider.WithServeGrace(time.Hour)}
			}
			return nil
		}
	}))
	ctx := testCtx(t)
	data := randomBytes(t, 30<<10)
	obj, err := net.UploadChunked(ctx, data, 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	readBack(t, net, net.Provider(2), data, 4<<10) // provider 2 is now serving it

	if _, err := net.Client.Submit(ctx, net.Member, chain.MsgDeleteDataObjects{Bag: net.Bag, Objects: []chain.ObjectID{obj.ID}}); err != nil {
		t.Fatal(err)
	}
	root := mustCID(t, obj.ContentID)
	for _, p := range net.Providers()[:2] {
		testnet.Wait(t, "object and its blocks removed", func() bool {
			ok, err := p.Store().Has(root)
			return holdsNot(p, obj)() && err == nil && !ok && p.Store().Stats().Blocks == 0
		})
	}
	p2 := net.Provider(2)
	testnet.Wait(t, "provider 2 deferring the removal", func() bool {
		return counter(t, p2.Registry(), "satchel_provider_cleanup_deferred_total", nil) > 0
	})
	if !p2.Holds(obj.ID) {
		t.Fatal("provider 2 removed an object it was serving")
	}
}

// A bag moved away from a provider's bucket is removed there only after two
// other providers of the bag confirm they hold every block: with one other
// holder it waits; when the second comes back, it removes.
func TestMovedBagCleanupWaitsForConfirmations(t *testing.T) {
	net := newNet(t)
	ctx := testCtx(t)
	obj, err := net.UploadChunked(ctx, randomBytes(t, 20<<10), 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	p0, p2 := net.Provider(0), net.Provider(2)
	if err := p2.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Client.Submit(ctx, net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: net.Bag, Remove: []chain.StorageBucketID{p0.Bucket},
	}); err != nil {
		t.Fatal(err)
	}
	// Provider 0 sees the move, asks provider 1 (the one holder it can
	// reach) and waits for a second confirmation.
	testnet.Wait(t, "provider 0 waiting for confirmations", func() bool {
		return p0.Server().Status().CleanupWaiting == 1
	})
	if !p0.Holds(obj.ID) {
		t.Fatal("provider 0 removed the object with only one other holder")
	}
	if got := counter(t, p0.Registry(), "satchel_provider_cleanup_objects_total", nil); got != 0 {
		t.Fatalf("provider 0 removed %v objects", got)
	}

	if err := p2.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "provider 0 removed the moved bag's object", holdsNot(p0, obj))
	if !net.Provider(1).Holds(obj.ID) || !p2.Holds(obj.ID) {
		t.Fatal("the bag's providers lost the object")
	}
	testnet.Wait(t, "provider 0 status shows nothing held or waiting", func() bool {
		st := p0.Server().Status()
		return st.CleanupWaiting == 0 && st.Objects == 0 && len(st.Bags) == 0
	})
}

// A chunk corrupted on disk is detected when it is read, refused to the
// reader, and repaired from a peer.
func TestCorruptChunkRepaired(t *testing.T) {
	net := newNet(t)
	ctx := testCtx(t)
	const chunkSize = 4 << 10
	data := randomBytes(t, 5*chunkSize)
	obj, err := net.UploadChunked(ctx, data, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	victim := res.Chunks[2].CID
	p1 := net.Provider(1)
	blocktest.Overwrite(t, p1.Store(), victim, func(b []byte) { copy(b, bytes.Repeat([]byte{0xee}, len(b))) })

	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, p1.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	if _, err := fc.GetBlock(ctx, p1.AddrInfo().ID, victim); err == nil {
		t.Fatal("a corrupt chunk was served")
	}
	testnet.Wait(t, "chunk repaired", func() bool {
		got, err := p1.Store().Get(victim)
		return err == nil && bytes.Equal(got, data[2*chunkSize:3*chunkSize])
	})
	got, err := fc.GetBlock(ctx, p1.AddrInfo().ID, victim)
	if err != nil || !bytes.Equal(got, data[2*chunkSize:3*chunkSize]) {
		t.Fatalf("repaired chunk read back: %v", err)
	}
	if n := counter(t, p1.Registry(), "satchel_provider_repairs_total", map[string]string{"result": "ok"}); n < 1 {
		t.Errorf("repairs ok = %v", n)
	}

	// A chunk found corrupt by a read outside the fetch handler is only
	// quarantined by the store; the node finds it in the quarantine list
	// and repairs it too.
	second := res.Chunks[4].CID
	blocktest.Overwrite(t, p1.Store(), second, func(b []byte) { copy(b, "garbage") })
	if _, err := p1.Store().Get(second); !errors.Is(err, blockstore.ErrCorrupt) {
		t.Fatalf("reading the corrupted chunk: %v, want ErrCorrupt", err)
	}
	testnet.Wait(t, "quarantined chunk repaired", func() bool {
		got, err := p1.Store().Get(second)
		return err == nil && bytes.Equal(got, data[4*chunkSize:])
	})
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A storage provider node: its libp2p host, its block store and a chain
// client, for the bucket its worker operates. (Compiled, not run: it needs
// a chain with that bucket; package testnet runs whole networks.)
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	transport, err := rpc.Dial("http://127.0.0.1:26657")
	if err != nil {
		log.Fatal(err)
	}
	client := chain.NewClient(transport)
	transactor, err := chain.LoadKey("transactor.key")
	if err != nil {
		log.Fatal(err)
	}
	key, err := p2p.LoadOrCreateIdentity("data/identity.key")
	if err != nil {
		log.Fatal(err)
	}
	h, err := p2p.New(ctx, p2p.WithIdentity(key), p2p.WithListenAddrs("/ip4/0.0.0.0/tcp/4001"))
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	bs, err := blockstore.Open("data/blocks")
	if err != nil {
		log.Fatal(err)
	}
	defer bs.Close()

	srv, err := provider.New(h, bs, client,
		provider.Identity{Worker: 3, Bucket: 1, Transactor: transactor},
		provider.WithStateDir("data"),
		provider.WithStatusAddr("127.0.0.1:7070"),
		provider.WithMetrics(prometheus.NewRegistry()),
	)
	if err != nil {
		log.Fatal(err)
	}
	// Serve until Ctrl-C: uploads are accepted on chain, missing objects
	// synced from peers, removed ones dropped.
	if err := srv.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Chunks larger than a frame-pool step (64 KiB) reach the syncing
// providers in pooled fetch frames, handed back once stored: every
// provider reads back exact bytes (a frame released before its chunk was
// written would store another chunk's bytes, unhashed).
func TestSyncedPooledChunksReadBackExact(t *testing.T) {
	net := newNet(t, testnet.Configure(func(c *testnet.Config) {
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
	}))
	ctx := testCtx(t)
	const chunkSize = 256 << 10
	big := randomBytes(t, 12*chunkSize+123)
	obj, err := net.UploadChunked(ctx, big, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers()[1:] {
		testnet.Wait(t, "synced", holds(p, obj))
		readBack(t, net, p, big, chunkSize)
	}
}
