package distributor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/verify"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// provenClient returns a client of e's chain whose every read is proven,
// as `satchel distributor server` reads a remote endpoint: its answers
// trail the chain's head by a block.
func provenClient(t *testing.T, e *env) *chain.Client {
	t.Helper()
	tr := e.net.Chain.Transport()
	lb, err := tr.(verify.Source).LightBlock(e.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rpc.Prove(e.ctx, tr, "in-process", rpc.Trust{Height: 1, Hash: hex.EncodeToString(lb.Hash())})
	if err != nil {
		t.Fatal(err)
	}
	return chain.NewClient(pt) // not closed: that would close the chain's own transport
}

func fetchClient(fc *fetch.Client) distributor.BlockSource { return fc }

// A node reading the chain through proven reads stops serving a bag
// removed from its bucket once it has read the block that removed it,
// without waiting for a later change, and serves the bag again once it
// has read the block that added it back.
func TestBagLeavingBucketFollowedAtNextBlock(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 20<<10)
	obj := e.put(t, data, 8<<10)
	bkt := e.d.Bucket
	srv := e.ownDistributorOn(t, provenClient(t, e), fetchClient)
	url := srv.URL() + "/api/v1/assets/" + obj.ID.String()
	waitStatus(t, url, http.StatusOK)
	bags := srv.Status().Bags

	update := func(add bool) int64 {
		t.Helper()
		msg := chain.MsgUpdateBagDistributionBuckets{Bag: e.net.Bag, Family: bkt.Family}
		if add {
			msg.Add = []uint64{bkt.Index}
		} else {
			msg.Remove = []uint64{bkt.Index}
		}
		r, err := e.net.Client.Submit(e.ctx, e.net.DistributionLead, msg)
		if err != nil {
			t.Fatal(err)
		}
		testnet.Wait(t, fmt.Sprintf("the node to read block %d", r.Height), func() bool { return srv.Status().ChainHeight >= r.Height })
		return r.Height
	}

	h := update(false)
	if st := srv.Status(); st.Bags != bags-1 {
		t.Fatalf("after reading block %d, which removed its bag, the node serves %d bags; want %d", h, st.Bags, bags-1)
	}
	if resp, _ := do(t, http.MethodHead, url); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("object of a bag removed from the node's bucket in block %d: %d, want 421", h, resp.StatusCode)
	}
	testnet.Wait(t, "the removed bag's object to leave the cache", func() bool { return !srv.Cached(obj.ID) })

	h = update(true)
	if st := srv.Status(); st.Bags != bags {
		t.Fatalf("after reading block %d, which added its bag back, the node serves %d bags; want %d", h, st.Bags, bags)
	}
	if resp, body := get(t, url); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("object of a bag added back in block %d: %d, %d bytes", h, resp.StatusCode, len(body))
	}
}

// faultyChain is a chain endpoint with the faults a real chain cannot be
// made to show: once forge is called, every block it delivers carries the
// forged events too; every block's height can be shifted; reads of bags
// and objects can be made to fail; its subscription can be cut after the
// block that moves a bag between storage buckets; it can be made
// unreachable (down), every read and subscription failing as a dial to a
// dead endpoint does. Reads go to the real chain, and are counted.
type faultyChain struct {
	distributor.ChainReader

	down atomic.Bool
	// infoMu guards infoAt, the times of the Info reads while down.
	infoMu sync.Mutex
	infoAt []time.Time

	shift   atomic.Int64 // added to every block's height
	failing atomic.Int32 // reads of bags and objects still to fail
	// loads counts the listings of every bag (one per load of the view),
	// storageReads the reads of a storage bucket (a bag's providers looked
	// up), pages the pages of a bag's objects read, failed the reads made
	// to fail.
	loads, storageReads, pages, failed atomic.Int32

	mu        sync.Mutex
	forged    []chain.Event
	heights   []int64 // of the blocks delivered with forged events
	cutOnMove bool    // cut the subscription after a bag moves between storage buckets
	cutAt     int64   // the height of that block; later subscriptions start after it
}

func (f *faultyChain) forge(evs ...chain.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forged = evs
}

// forgedIn returns the height of the n-th block delivered with forged
// events (0 before).
func (f *faultyChain) forgedIn(n int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.heights) < n {
		return 0
	}
	return f.heights[n-1]
}

// cut arms the cut of the subscription; cutHeight returns the height of the
// block it was cut after (0 before).
func (f *faultyChain) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutOnMove = true
}

func (f *faultyChain) cutHeight() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cutAt
}

// errUnreachable is the error of a read while the chain is down: what an
// RPC client says when its node is gone, endpoint included.
var errUnreachable = errors.New(`abci info: post failed: Post "http://127.0.0.1:36658": dial tcp 127.0.0.1:36658: connect: connection refused`)

// unreachable returns errUnreachable while the chain is down.
func (f *faultyChain) unreachable() error {
	if f.down.Load() {
		return errUnreachable
	}
	return nil
}

// readErr is the error of a read of a bag or an object: unreachable,
// else one made to fail.
func (f *faultyChain) readErr() error {
	if err := f.unreachable(); err != nil {
		return err
	}
	return f.fail()
}

func (f *faultyChain) Info(ctx context.Context) (chain.NodeInfo, error) {
	if f.down.Load() {
		f.infoMu.Lock()
		f.infoAt = append(f.infoAt, time.Now())
		f.infoMu.Unlock()
		return chain.NodeInfo{}, errUnreachable
	}
	return f.ChainReader.Info(ctx)
}

// infoReadsWhileDown returns the times of the Info reads while down.
func (f *faultyChain) infoReadsWhileDown() []time.Time {
	f.infoMu.Lock()
	defer f.infoMu.Unlock()
	return slices.Clone(f.infoAt)
}

func (f *faultyChain) DistributionBucket(ctx context.Context, id chain.DistributionBucketID) (chain.DistributionBucket, error) {
	if err := f.unreachable(); err != nil {
		return chain.DistributionBucket{}, err
	}
	return f.ChainReader.DistributionBucket(ctx, id)
}

func (f *faultyChain) Subscribe(ctx context.Context, from int64) (<-chan chain.BlockEvents, <-chan error) {
	if err := f.unreachable(); err != nil {
		out, errc := make(chan chain.BlockEvents), make(chan error, 1)
		close(out)
		errc <- err
		return out, errc
	}
	f.mu.Lock()
	if f.cutAt > 0 { // the endpoint came back after the cut block
		from = max(from, f.cutAt+1)
	}
	f.mu.Unlock()
	in, inErr := f.ChainReader.Subscribe(ctx, from)
	out, errc := make(chan chain.BlockEvents), make(chan error, 1)
	go func() {
		defer close(out)
		for be := range in {
			if err := f.unreachable(); err != nil {
				errc <- err
				return
			}
			cut := f.fault(&be)
			select {
			case out <- be:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			if cut {
				errc <- errors.New("subscription cut")
				return
			}
		}
		errc <- <-inErr
	}()
	return out, errc
}

// fault forges be and reports whether the subscription is to be cut after
// it.
func (f *faultyChain) fault(be *chain.BlockEvents) (cut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forged) > 0 {
		be.Events = append(slices.Clone(be.Events), f.forged...)
		f.heights = append(f.heights, be.Height)
	}
	if _, moved := chain.FindEvent[chain.StorageBagBucketsUpdated](be.Events); moved && f.cutOnMove {
		f.cutOnMove, f.cutAt = false, be.Height
		cut = true
	}
	be.Height += f.shift.Load()
	return cut
}

// fail reports whether a read is to fail, counting it.
func (f *faultyChain) fail() error {
	for {
		n := f.failing.Load()
		if n <= 0 {
			return nil
		}
		if f.failing.CompareAndSwap(n, n-1) {
			f.failed.Add(1)
			return errors.New("endpoint failed the read")
		}
	}
}

func (f *faultyChain) Bags(ctx context.Context) ([]chain.Bag, error) {
	f.loads.Add(1)
	if err := f.unreachable(); err != nil {
		return nil, err
	}
	return f.ChainReader.Bags(ctx)
}

func (f *faultyChain) StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	f.storageReads.Add(1)
	if err := f.unreachable(); err != nil {
		return chain.StorageBucket{}, err
	}
	return f.ChainReader.StorageBucket(ctx, id)
}

func (f *faultyChain) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	if err := f.readErr(); err != nil {
		return chain.Bag{}, err
	}
	return f.ChainReader.Bag(ctx, id)
}

func (f *faultyChain) DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	if err := f.readErr(); err != nil {
		return chain.DataObject{}, err
	}
	return f.ChainReader.DataObject(ctx, bag, id)
}

func (f *faultyChain) ObjectsPage(ctx context.Context, bag chain.BagID, p chain.PageRequest) (chain.Page[chain.DataObject], error) {
	if err := f.readErr(); err != nil {
		return chain.Page[chain.DataObject]{}, err
	}
	f.pages.Add(1)
	return f.ChainReader.ObjectsPage(ctx, bag, p)
}

// Events are hints: a forged deletion of an object (naming its bag,
// another or a malformed one) or of its bag leaves the object served and
// cached; a forged registration neither changes an object's content ID
// nor makes up an object.
func TestForgedObjectEventsChangeNothing(t *testing.T) {
	e := newEnv(t, 2)
	aData, bData := randomBytes(t, 20<<10), randomBytes(t, 24<<10)
	a := e.put(t, aData, 8<<10)
	b := e.put(t, bData, 8<<10)
	fc := &faultyChain{ChainReader: e.net.Client}
	srv := e.ownDistributorOn(t, fc, fetchClient)
	base := srv.URL() + "/api/v1/assets/"
	for _, o := range []chain.DataObject{a, b} {
		waitStatus(t, base+o.ID.String(), http.StatusOK)
	}
	testnet.Wait(t, "object a cached", func() bool { return srv.Cached(a.ID) })

	ghost := b.ID + 1000
	fake := b
	fake.ContentID, fake.Size = a.ContentID, a.Size
	fc.forge(
		chain.NewEvent(chain.ObjectsDeleted{Bag: e.net.Bag, Objects: []chain.ObjectID{a.ID}}),
		chain.NewEvent(chain.ObjectsDeleted{Bag: "dynamic:channel:999", Objects: []chain.ObjectID{a.ID}}),
		chain.NewEvent(chain.ObjectsDeleted{Bag: "no bag", Objects: []chain.ObjectID{a.ID}}),
		chain.NewEvent(chain.BagDeleted{Bag: e.net.Bag}),
		chain.NewEvent(chain.ObjectsRegistered{Bag: e.net.Bag, Objects: []chain.DataObject{
			fake, {ID: ghost, Bag: e.net.Bag, Size: a.Size, ContentID: a.ContentID, Accepted: true},
		}}),
	)
	testnet.Wait(t, "the node to read three blocks with forged events", func() bool {
		h := fc.forgedIn(3)
		return h > 0 && srv.Status().ChainHeight >= h
	})

	if !srv.Serving(a.ID) || !srv.Cached(a.ID) {
		t.Fatalf("after forged deletions object %d is served: %v, cached: %v; want both", a.ID, srv.Serving(a.ID), srv.Cached(a.ID))
	}
	if resp, body := get(t, base+a.ID.String()); resp.StatusCode != http.StatusOK || !bytes.Equal(body, aData) {
		t.Fatalf("GET object %d after forged deletions: %d, %d bytes", a.ID, resp.StatusCode, len(body))
	}
	resp, body := get(t, base+b.ID.String())
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, bData) || resp.Header.Get("ETag") != `"`+b.ContentID+`"` {
		t.Fatalf("GET object %d after a forged registration giving it another content ID: %d, ETag %s (want %q), content right: %v",
			b.ID, resp.StatusCode, resp.Header.Get("ETag"), b.ContentID, bytes.Equal(body, bData))
	}
	if srv.Serving(ghost) {
		t.Fatalf("object %d, registered only by a forged event, is served", ghost)
	}
	if resp, _ := do(t, http.MethodHead, base+ghost.String()); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("object %d, registered only by a forged event: %d, want 404", ghost, resp.StatusCode)
	}
	if st := srv.Status(); st.Objects != 2 {
		t.Fatalf("status counts %d objects served, want 2", st.Objects)
	}
}

// A block's reads that fail now and then are tried again: the node reads
// the block without reloading its whole view. Reads that keep failing make
// it reload, and it follows the chain again once they succeed.
func TestFailedHintReadsRetried(t *testing.T) {
	e := newEnv(t, 2)
	fc := &faultyChain{ChainReader: e.net.Client}
	srv := e.ownDistributorOn(t, fc, fetchClient)
	loads := fc.loads.Load()

	fc.failing.Store(2)
	obj, err := e.net.Register(e.ctx, 11, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the node to serve the registered object", func() bool { return srv.Serving(obj.ID) })
	if n := fc.failed.Load(); n != 2 {
		t.Fatalf("%d reads failed, want 2", n)
	}
	if n := fc.loads.Load(); n != loads {
		t.Fatalf("two failed reads of a block made the node reload its view (%d loads, want %d)", n, loads)
	}

	fc.failing.Store(1 << 30)
	obj, err = e.net.Register(e.ctx, 11, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the node to reload its view", func() bool { return fc.loads.Load() > loads })
	fc.failing.Store(0)
	testnet.Wait(t, "the node to serve the object registered while reads failed", func() bool { return srv.Serving(obj.ID) })
}

// A bag moved between storage buckets in a block the node held back when
// its subscription failed is not lost: the node looks the bag's providers
// up again after it reloads.
func TestStorageMoveInHeldBlockNotLost(t *testing.T) {
	e := newEnv(t, 2)
	a := e.put(t, randomBytes(t, 20<<10), 8<<10)
	b := e.put(t, randomBytes(t, 20<<10), 8<<10)
	fc := &faultyChain{ChainReader: e.net.Client}
	srv := e.ownDistributorOn(t, fc, fetchClient)
	base := srv.URL() + "/api/v1/assets/"
	if resp, _ := get(t, base+a.ID.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET object %d: %d", a.ID, resp.StatusCode)
	}
	looked, loads := fc.storageReads.Load(), fc.loads.Load()

	fc.cut()
	r, err := e.net.Client.Submit(e.ctx, e.net.StorageLead, chain.MsgUpdateBagStorageBuckets{
		Bag: e.net.Bag, Remove: []chain.StorageBucketID{e.net.Provider(1).Bucket},
	})
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the subscription cut after the move and the node reloaded", func() bool {
		return fc.cutHeight() == r.Height && fc.loads.Load() > loads && srv.Status().ChainHeight >= r.Height
	})
	if srv.Cached(b.ID) {
		t.Fatalf("object %d cached before it was asked for", b.ID)
	}
	if resp, _ := get(t, base+b.ID.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET object %d: %d", b.ID, resp.StatusCode)
	}
	if fc.storageReads.Load() == looked {
		t.Fatalf("after its bag moved in block %d, held back when the subscription was cut, the node fetched object %d from the providers it had looked up before", r.Height, b.ID)
	}
}

// The height the node reports read is one a proven read showed, not the
// one a block event claims.
func TestForgedBlockHeightNotReported(t *testing.T) {
	e := newEnv(t, 2)
	fc := &faultyChain{ChainReader: e.net.Client}
	fc.shift.Store(1_000_000)
	srv := e.ownDistributorOn(t, fc, fetchClient)
	obj, err := e.net.Register(e.ctx, 11, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the node to serve the registered object", func() bool { return srv.Serving(obj.ID) })
	info, err := e.net.Client.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h := srv.Status().ChainHeight; h > info.Height || h <= 0 {
		t.Fatalf("the node reports block %d read; the chain is at %d", h, info.Height)
	}
}

// A node reading the chain through proven reads stops serving an object
// deleted on chain, and drops it from its cache, once it has read the
// block that deleted it (reading the bag's pages: a proven not-found
// waits for the next block); the bag's other objects stay served.
func TestDeletedObjectFollowedThroughProvenReads(t *testing.T) {
	e := newEnv(t, 2)
	gone := e.put(t, randomBytes(t, 20<<10), 8<<10)
	keptData := randomBytes(t, 24<<10)
	kept := e.put(t, keptData, 8<<10)
	fc := &faultyChain{ChainReader: provenClient(t, e)}
	srv := e.ownDistributorOn(t, fc, fetchClient)
	base := srv.URL() + "/api/v1/assets/"
	for _, o := range []chain.DataObject{gone, kept} {
		waitStatus(t, base+o.ID.String(), http.StatusOK)
	}
	testnet.Wait(t, "the object to delete cached", func() bool { return srv.Cached(gone.ID) })
	pages := fc.pages.Load()

	r, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgDeleteDataObjects{Bag: e.net.Bag, Objects: []chain.ObjectID{gone.ID}})
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, fmt.Sprintf("the node to read block %d", r.Height), func() bool { return srv.Status().ChainHeight >= r.Height })
	if srv.Serving(gone.ID) || srv.Cached(gone.ID) {
		t.Fatalf("after reading block %d, which deleted it, object %d is served: %v, cached: %v", r.Height, gone.ID, srv.Serving(gone.ID), srv.Cached(gone.ID))
	}
	if resp, _ := do(t, http.MethodHead, base+gone.ID.String()); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD object %d deleted in block %d: %d, want 404", gone.ID, r.Height, resp.StatusCode)
	}
	if fc.pages.Load() == pages {
		t.Errorf("the node read no page of the bag to confirm the deletion")
	}
	if resp, body := get(t, base+kept.ID.String()); resp.StatusCode != http.StatusOK || !bytes.Equal(body, keptData) {
		t.Fatalf("GET object %d, not deleted: %d, %d bytes", kept.ID, resp.StatusCode, len(body))
	}
	if st := srv.Status(); st.Objects != 1 {
		t.Fatalf("status counts %d objects served, want 1", st.Objects)
	}
}
