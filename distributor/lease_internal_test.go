package distributor

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// A call's bytes stay until every hold on it is let go, however often a
// holder drops its lease, and go with the last hold.
func TestLeaseHolds(t *testing.T) {
	f := &fetcher{}
	data := []byte("a leaf")
	cl := &call{done: closedDone, network: true, blk: fetch.Block{Data: data}, refs: 3} // the fetch and two leases
	a, b := &lease{call: cl, f: f}, &lease{call: cl, f: f}
	a.drop()
	a.drop() // again: nothing
	if cl.refs != 2 || !bytes.Equal(cl.blk.Data, data) {
		t.Fatalf("after one lease dropped twice: refs %d, data %q; want 2 holds and the bytes", cl.refs, cl.blk.Data)
	}
	if a.call != nil {
		t.Fatal("a dropped lease still reaches its call")
	}
	f.mu.Lock()
	blk := f.unrefLocked(cl) // the fetch lets go
	f.mu.Unlock()
	if blk.Data != nil || !bytes.Equal(cl.blk.Data, data) {
		t.Fatalf("the fetch let go with a lease held: the buffer came back (%q) or the bytes went (%q)", blk.Data, cl.blk.Data)
	}
	b.drop()
	if cl.refs != 0 || cl.blk.Data != nil {
		t.Fatalf("after the last hold: refs %d, bytes %q; want all gone", cl.refs, cl.blk.Data)
	}
	var none *lease
	none.drop() // a nil lease: nothing
}

// A block the cache came to hold after its reader looked (a fetch ended,
// put it there and stopped being findable) is read from the cache when the
// reader starts its fetch, not fetched again.
func TestStartFetchSeesTheCacheFilledMeanwhile(t *testing.T) {
	ch, err := openCache(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f := &fetcher{cache: ch, calls: map[callKey]*call{}, active: map[chain.ObjectID]int{}}
	obj := chain.DataObject{ID: 7}
	data := []byte("a leaf fetched by another answer")
	c := rawBlock(t, data)
	if err := ch.put(obj.ID, c, data); err != nil {
		t.Fatal(err)
	}
	l := f.startFetch(obj, c, true, true)
	defer l.drop()
	f.mu.Lock()
	running := len(f.calls)
	f.mu.Unlock()
	if l.network || running != 0 {
		t.Fatalf("a block the cache holds was fetched again (network lease %v, %d fetches running)", l.network, running)
	}
}
