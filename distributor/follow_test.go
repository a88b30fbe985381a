package distributor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

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

// forgingChain is a chain endpoint that forges block events: once forge
// is called, every block it delivers carries the forged events too, while
// every read goes to the real chain. A real chain cannot be made to emit
// an event its state does not bear out.
type forgingChain struct {
	distributor.ChainReader

	mu      sync.Mutex
	forged  []chain.Event
	heights []int64 // of the blocks delivered with forged events
}

func (f *forgingChain) forge(evs ...chain.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forged = evs
}

// forgedIn returns the height of the n-th block delivered with forged
// events (0 before).
func (f *forgingChain) forgedIn(n int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.heights) < n {
		return 0
	}
	return f.heights[n-1]
}

func (f *forgingChain) Subscribe(ctx context.Context, from int64) (<-chan chain.BlockEvents, <-chan error) {
	in, errc := f.ChainReader.Subscribe(ctx, from)
	out := make(chan chain.BlockEvents)
	go func() {
		defer close(out)
		for be := range in {
			f.mu.Lock()
			if len(f.forged) > 0 {
				be.Events = append(slices.Clone(be.Events), f.forged...)
				f.heights = append(f.heights, be.Height)
			}
			f.mu.Unlock()
			select {
			case out <- be:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
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
	fc := &forgingChain{ChainReader: e.net.Client}
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
