package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

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

func TestHoldings(t *testing.T) {
	c := func(s string) cid.Cid { return chunker.ChunkCID([]byte(s)) }
	h := newHoldings()
	h.add(blockstore.Manifest{Bag: "dynamic:channel:1", Object: 1, Root: c("root1"), Chunks: []blockstore.ChunkRef{{CID: c("a")}, {CID: c("shared")}}, Nodes: []cid.Cid{c("root1")}})
	h.add(blockstore.Manifest{Bag: "dynamic:channel:2", Object: 2, Root: c("shared"), Chunks: []blockstore.ChunkRef{{CID: c("shared")}}})
	if got := h.objectsOf(c("shared")); len(got) != 2 || got[1] != "dynamic:channel:1" || got[2] != "dynamic:channel:2" {
		t.Fatalf("objectsOf(shared) = %v", got)
	}
	if blocks, _ := h.blocksOf(1); len(blocks) != 3 {
		t.Fatalf("blocksOf(1) = %v, want root and two chunks, once each", blocks)
	}
	if h.touch(c("unknown")) {
		t.Fatal("serves a block of no held object")
	}
	if !h.touch(c("a")) || h.lastRead(1).IsZero() || !h.lastRead(2).IsZero() {
		t.Fatal("a read of object 1's chunk did not stamp object 1 alone")
	}
	h.remove(1)
	if h.touch(c("a")) || !h.touch(c("shared")) || h.bagObjects("dynamic:channel:1") != 0 || h.objectCount() != 1 {
		t.Fatal("after removing object 1: its own blocks must go, shared ones stay")
	}
	if got := h.bagList(); len(got) != 1 || got[0] != "dynamic:channel:2" {
		t.Fatalf("bags = %v", got)
	}
}

// TestServePolicyHaveKeepsNothingAlive: the fetch policy's Serves (asked by
// HAVE and GET alike) records no read; only RecordRead, after a GET sent
// bytes, does — so asking about a deleted object cannot keep it forever.
func TestServePolicyHaveKeepsNothingAlive(t *testing.T) {
	h := newHoldings()
	c := chunker.ChunkCID([]byte("held"))
	h.add(blockstore.Manifest{Bag: "b", Object: 9, Root: c, Chunks: []blockstore.ChunkRef{{CID: c, Size: 4}}})
	p := &servePolicy{h: h}
	if !p.Serves(context.Background(), c) {
		t.Fatal("held block not served")
	}
	if !h.lastRead(9).IsZero() {
		t.Fatal("Serves recorded a read")
	}
	p.RecordRead(c)
	if h.lastRead(9).IsZero() {
		t.Fatal("RecordRead recorded nothing")
	}
}
