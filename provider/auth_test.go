package provider

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider/blockstore"
)

func authFixture(t *testing.T) (*fakeChain, *chainAuth, chain.DataObject) {
	t.Helper()
	f := newFakeChain()
	mine, other := chain.StorageBucketID(2), chain.StorageBucketID(3)
	f.buckets[mine] = chain.StorageBucket{ID: mine, Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 1000, ObjectsUsed: 1, SizeUsed: 100}}
	f.bags[chain.ChannelBag(1)] = chain.Bag{ID: chain.ChannelBag(1), StorageBuckets: []chain.StorageBucketID{mine, other}}
	f.bags[chain.ChannelBag(2)] = chain.Bag{ID: chain.ChannelBag(2), StorageBuckets: []chain.StorageBucketID{other}}
	obj := chain.DataObject{ID: 5, Bag: chain.ChannelBag(1), Size: 3, ContentID: chunker.ChunkCID([]byte("abc")).String()}
	f.objects[chain.ObjectRef{Bag: obj.Bag, ID: obj.ID}] = obj
	return f, newChainAuth(f, mine), obj
}

// The authorizer agrees only to what the chain allows, and says why not.
func TestChainAuthorizer(t *testing.T) {
	ctx := context.Background()
	f, a, obj := authFixture(t)
	root, err := a.AuthorizeChunk(ctx, string(obj.Bag), uint64(obj.ID))
	if err != nil || root.String() != obj.ContentID {
		t.Fatalf("AuthorizeChunk = %s, %v; want %s", root, err, obj.ContentID)
	}
	if err := a.AuthorizeSession(ctx, string(obj.Bag), 900); err != nil {
		t.Fatalf("AuthorizeSession(900 of 900 free) = %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"object not registered", func() error {
			_, err := a.AuthorizeChunk(ctx, string(obj.Bag), 6)
			return err
		}, "register the object on chain"},
		{"bag not assigned", func() error {
			_, err := a.AuthorizeChunk(ctx, "dynamic:channel:2", 5)
			return err
		}, "not assigned to storage bucket 2"},
		{"bag does not exist", func() error {
			_, err := a.AuthorizeChunk(ctx, "dynamic:channel:9", 5)
			return err
		}, "does not exist"},
		{"bad bag ID", func() error {
			_, err := a.AuthorizeChunk(ctx, "channel 1", 5)
			return err
		}, "bag"},
		{"session over the voucher", func() error { return a.AuthorizeSession(ctx, string(obj.Bag), 901) }, "900 bytes of voucher room"},
		{"session in a bag not assigned", func() error { return a.AuthorizeSession(ctx, "dynamic:channel:2", 1) }, "not assigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrNotAuthorized naming %q", err, tc.want)
			}
		})
	}

	// Changes on chain are seen once the cache is invalidated (an event
	// does that): a blacklisted content ID, a bucket over its limits.
	f.mu.Lock()
	f.params.Blacklist = []string{obj.ContentID}
	f.mu.Unlock()
	a.invalidate()
	if _, err := a.AuthorizeChunk(ctx, string(obj.Bag), uint64(obj.ID)); !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "blacklisted") {
		t.Fatalf("blacklisted: %v", err)
	}
	f.mu.Lock()
	f.params.Blacklist = nil
	b := f.buckets[2]
	b.Voucher.SizeLimit = 50
	f.buckets[2] = b
	f.mu.Unlock()
	a.invalidate()
	if _, err := a.AuthorizeChunk(ctx, string(obj.Bag), uint64(obj.ID)); !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "over its voucher limits") {
		t.Fatalf("over limits: %v", err)
	}
}

// heldFixture opens a real block store and returns it with a function that
// stores data as object id of bag (chunks of 1 KiB, a DAG above them),
// bound through PutManifest, or, with a session, held by that upload
// session alone.
func heldFixture(t testing.TB) (*blockstore.Store, func(bag string, id uint64, data []byte, sess *blockstore.Session) blockstore.Manifest) {
	t.Helper()
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	put := func(bag string, id uint64, data []byte, sess *blockstore.Session) blockstore.Manifest {
		t.Helper()
		res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(1<<10))
		if err != nil {
			t.Fatal(err)
		}
		m := blockstore.Manifest{Bag: bag, Object: id, Root: res.Root, Size: uint64(len(data))}
		for _, c := range res.Chunks {
			m.Chunks = append(m.Chunks, blockstore.ChunkRef{CID: c.CID, Size: uint64(c.Size)})
			blk := data[c.Offset : c.Offset+int64(c.Size)]
			if sess != nil {
				err = bs.PutInSession(*sess, c.CID, blk)
			} else {
				err = bs.Put(c.CID, blk)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if sess == nil {
			if err := bs.PutManifest(m); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	return bs, put
}

// holdings answers from the store's index: shared blocks name every object
// holding them, a withdrawn object is no longer served while it is being
// deleted (and is again if the deletion fails), a deleted object's blocks
// go unless shared.
func TestHoldings(t *testing.T) {
	bs, put := heldFixture(t)
	shared := bytes.Repeat([]byte("s"), 1<<10)
	m1 := put("dynamic:channel:1", 1, append(bytes.Clone(shared), bytes.Repeat([]byte("a"), 1<<10)...), nil)
	m2 := put("dynamic:channel:2", 2, shared, nil) // one chunk: its root
	own, sharedCID := m1.Chunks[1].CID, m2.Root
	h := newHoldings(bs, time.Hour)
	objectsOf := func(c cid.Cid) map[uint64]string {
		t.Helper()
		got, err := h.objectsOf(c)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := objectsOf(sharedCID); len(got) != 2 || got[1] != "dynamic:channel:1" || got[2] != "dynamic:channel:2" {
		t.Fatalf("objectsOf(shared) = %v", got)
	}
	if blocks, ok := h.blocksOf(1); !ok || len(blocks) != 3 {
		t.Fatalf("blocksOf(1) = %v, want root and two chunks, once each", blocks)
	}
	if getRead(h, chunker.ChunkCID([]byte("unknown"))) {
		t.Fatal("serves a block of no held object")
	}
	if !getRead(h, own) || h.lastRead(1).IsZero() || !h.lastRead(2).IsZero() {
		t.Fatal("a read of object 1's chunk did not stamp object 1 alone")
	}

	// A removal that fails serves the object again.
	withdrawn(t, h, 2)
	if h.has(2) || !h.holds(m2.Root) || len(objectsOf(sharedCID)) != 1 {
		t.Fatal("withdrawn object 2 still counted, or object 1's share of its block lost")
	}
	h.restore(2, false)
	if !h.has(2) || len(objectsOf(sharedCID)) != 2 {
		t.Fatal("object 2 not served again after a failed removal")
	}

	withdrawn(t, h, 1)
	if h.holds(own) || getRead(h, own) || h.has(1) || !h.holds(sharedCID) {
		t.Fatal("while object 1 is being removed: its own blocks must not be served, shared ones must")
	}
	if _, ok := h.blocksOf(1); ok {
		t.Fatal("blocksOf a withdrawn object")
	}
	if err := bs.DeleteObject(1); err != nil {
		t.Fatal(err)
	}
	h.restore(1, true)
	if h.holds(own) || h.has(1) || !h.lastRead(1).IsZero() || !getRead(h, sharedCID) || h.hasBag("dynamic:channel:1") || h.objectCount() != 1 {
		t.Fatal("after removing object 1: its own blocks and read time must go, shared ones stay")
	}
	if got, err := h.bagList(); err != nil || len(got) != 1 || got[0] != "dynamic:channel:2" || h.bagObjects(got[0]) != 1 {
		t.Fatalf("bags = %v, %v", got, err)
	}
}

// A removal is refused while the object was read within the serve grace,
// and the check and the withdraw are one step: once it is withdrawn, no
// read counts it.
func TestWithdrawUnlessRead(t *testing.T) {
	bs, put := heldFixture(t)
	m := put("b", 1, []byte("served"), nil)
	h := newHoldings(bs, time.Minute)
	if !getRead(h, m.Root) {
		t.Fatal("a held object's block not served")
	}
	now := time.Now()
	if last, ok := h.withdrawUnlessRead(1, now); ok || last.IsZero() || !h.has(1) {
		t.Fatalf("withdrew an object read just now (last read %v)", last)
	}
	if _, ok := h.withdrawUnlessRead(1, now.Add(2*time.Minute)); !ok {
		t.Fatal("refused to withdraw an object last read past the grace")
	}
	if h.has(1) || getRead(h, m.Root) {
		t.Fatal("a withdrawn object is still served")
	}
	h.restore(1, false)
	if !h.has(1) {
		t.Fatal("not served again after the withdraw was undone")
	}
}

// Read times are kept only while they protect an object: once the map
// has grown, reads older than the serve grace are forgotten.
func TestHoldingsPrunesOldReads(t *testing.T) {
	bs, put := heldFixture(t)
	m := put("b", 1, []byte("held"), nil)
	h := newHoldings(bs, time.Hour)
	for o := range uint64(readsPruneMin - 1) {
		h.reads[100+o] = time.Now().Add(-2 * time.Hour)
	}
	h.reads[99] = time.Now() // within the grace
	if !getRead(h, m.Root) {
		t.Fatal("held block not served")
	}
	if len(h.reads) != 2 || h.lastRead(1).IsZero() || h.lastRead(99).IsZero() || !h.lastRead(100).IsZero() {
		t.Fatalf("after the prune: %d read times kept, want objects 1 and 99", len(h.reads))
	}
	if h.pruneAt != readsPruneMin {
		t.Fatalf("next prune at %d, want %d", h.pruneAt, readsPruneMin)
	}
}

// TestServePolicyHaveKeepsNothingAlive: the fetch policy's Serves (asked by
// HAVE) records no read; only a GET's done, once its reply carries the
// bytes, does — so asking about a deleted object cannot keep it forever.
func TestServePolicyHaveKeepsNothingAlive(t *testing.T) {
	bs, put := heldFixture(t)
	m := put("b", 9, []byte("held"), nil)
	h := newHoldings(bs, time.Hour)
	p := &servePolicy{h: h}
	if !p.Serves(context.Background(), m.Root) {
		t.Fatal("held block not served")
	}
	if !h.lastRead(9).IsZero() {
		t.Fatal("Serves recorded a read")
	}
	if !getRead(h, m.Root) || h.lastRead(9).IsZero() {
		t.Fatal("a served GET recorded nothing")
	}
}

// withdrawn withdraws obj as a removal does (withdrawUnlessRead), at a
// time past the serve grace of any read so far.
func withdrawn(t testing.TB, h *holdings, obj uint64) {
	t.Helper()
	if last, ok := h.withdrawUnlessRead(obj, time.Now().Add(h.grace)); !ok {
		t.Fatalf("object %d not withdrawn (last read %v)", obj, last)
	}
}

// getRead asks the fetch policy for a GET of c as the fetch handler does
// (ServeRead, then done as the reply with the bytes is built) and reports
// whether c was served.
func getRead(h *holdings, c cid.Cid) bool {
	done, ok := (&servePolicy{h: h}).ServeRead(context.Background(), c)
	if ok && done != nil {
		done()
	}
	return ok
}

// A GET is decided and recorded from one look-up (ServeRead): its done
// stamps the objects that look-up found, and nothing is recorded without
// it; a served read keeps its object from removal within the serve grace,
// not after. A withdraw between the look-up and done wins: the withdrawn
// object is not stamped, a deleted one does not get its read time back,
// and the other objects sharing the block are stamped all the same.
func TestServeReadStampsWhatItFound(t *testing.T) {
	bs, put := heldFixture(t)
	ctx := context.Background()
	shared := bytes.Repeat([]byte("s"), 1<<10)
	m1 := put("dynamic:channel:1", 1, append(bytes.Clone(shared), bytes.Repeat([]byte("a"), 1<<10)...), nil)
	m2 := put("dynamic:channel:2", 2, shared, nil) // one chunk: its root
	own, sharedCID := m1.Chunks[1].CID, m2.Root
	fresh := func() (*holdings, *servePolicy) {
		h := newHoldings(bs, time.Minute)
		return h, &servePolicy{h: h}
	}
	serveRead := func(p *servePolicy, c cid.Cid) func() {
		t.Helper()
		done, ok := p.ServeRead(ctx, c)
		if !ok || done == nil {
			t.Fatalf("ServeRead(%s) = %v, %v; want served with a done", c, done != nil, ok)
		}
		return done
	}

	h, p := fresh()
	serveRead(p, own) // a GET that sent nothing: done not called
	if !h.lastRead(1).IsZero() {
		t.Fatal("ServeRead recorded a read before done")
	}
	if _, ok := h.withdrawUnlessRead(1, time.Now()); !ok {
		t.Fatal("an object asked about but never sent kept from removal")
	}
	if _, ok := p.ServeRead(ctx, own); ok {
		t.Fatal("a block of a withdrawn object served")
	}
	h.restore(1, false)

	serveRead(p, own)()
	if h.lastRead(1).IsZero() || !h.lastRead(2).IsZero() {
		t.Fatal("a served read of object 1's chunk did not stamp object 1 alone")
	}
	now := time.Now()
	if last, ok := h.withdrawUnlessRead(1, now); ok || last.IsZero() {
		t.Fatal("removed an object served just now")
	}
	if _, ok := h.withdrawUnlessRead(1, now.Add(2*time.Minute)); !ok {
		t.Fatal("an object last served past the grace kept from removal")
	}
	h.restore(1, false)

	// Withdrawn between the look-up and done: not stamped.
	h, p = fresh()
	done := serveRead(p, sharedCID) // finds objects 1 and 2
	withdrawn(t, h, 2)
	done()
	if h.lastRead(1).IsZero() || !h.lastRead(2).IsZero() {
		t.Fatal("a read decided before object 2 was withdrawn must stamp object 1 alone")
	}
	h.restore(2, false)

	// Deleted between the look-up and done: its read time stays gone.
	h, p = fresh()
	done = serveRead(p, sharedCID)
	withdrawn(t, h, 2)
	if err := bs.DeleteObject(2); err != nil {
		t.Fatal(err)
	}
	h.restore(2, true)
	done()
	if h.lastRead(1).IsZero() || !h.lastRead(2).IsZero() {
		t.Fatal("a read decided before object 2 was deleted must stamp object 1 alone")
	}
	if _, ok := p.ServeRead(ctx, chunker.ChunkCID([]byte("unknown"))); ok {
		t.Fatal("a block of no held object served")
	}
}

// A removal whose deletion fails after the store's index commit (an error
// cleaning up the blocks) has deleted its object all the same, and is
// restored as not deleted: a GET looked up before the withdraw must not
// stamp the gone object read when its done runs after that restore.
func TestServeReadAfterFailedDeletion(t *testing.T) {
	bs, put := heldFixture(t)
	ctx := context.Background()
	shared := bytes.Repeat([]byte("s"), 1<<10)
	put("dynamic:channel:1", 1, append(bytes.Clone(shared), bytes.Repeat([]byte("a"), 1<<10)...), nil)
	m2 := put("dynamic:channel:2", 2, shared, nil) // one chunk: its root
	h := newHoldings(bs, time.Minute)
	p := &servePolicy{h: h}
	done, ok := p.ServeRead(ctx, m2.Root) // finds objects 1 and 2
	if !ok || done == nil {
		t.Fatal("a block of two held objects not served")
	}
	if _, ok := h.withdrawUnlessRead(2, time.Now()); !ok {
		t.Fatal("an object never read kept from removal")
	}
	if err := bs.DeleteObject(2); err != nil {
		t.Fatal(err)
	}
	h.restore(2, false) // as removeObject does when DeleteObject returns an error
	done()
	if !h.lastRead(2).IsZero() {
		t.Fatal("a read looked up before a failed removal that deleted object 2 stamped it")
	}
	if h.lastRead(1).IsZero() {
		t.Fatal("object 1, which shares the block, not stamped")
	}
}

// The fetch policy never serves a chunk only an upload session holds:
// nothing ties it to a registered object yet. Once the object is bound
// (its manifest recorded), its blocks are served, and they stay served
// when the session ends; deleting the object stops it.
func TestServePolicySessionChunks(t *testing.T) {
	bs, put := heldFixture(t)
	ctx := context.Background()
	sess := &blockstore.Session{ID: []byte("upload"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
	data := bytes.Repeat([]byte("chunked "), 512) // four chunks
	m := put(sess.Bag, 4, data, sess)
	p := &servePolicy{h: newHoldings(bs, time.Hour)}
	c := m.Chunks[2].CID
	if held, _ := bs.Has(c); !held || p.Serves(ctx, c) || getRead(p.h, c) {
		t.Fatalf("a session's chunk (held %v) is served before its object is bound", held)
	}
	if _, ok := p.ServeRead(ctx, c); ok {
		t.Fatal("a GET of a session's chunk is served before its object is bound")
	}
	if err := bs.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	if err := bs.EndSession(sess.ID); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blocks() {
		if _, ok := p.ServeRead(ctx, b); !ok || !p.Serves(ctx, b) {
			t.Fatalf("block %s of the bound object not served", b)
		}
	}
	if err := bs.DeleteObject(4); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.ServeRead(ctx, c); ok || p.Serves(ctx, c) || p.Serves(ctx, m.Root) {
		t.Fatal("a deleted object's blocks are still served")
	}
}
