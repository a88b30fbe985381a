package distributor

import (
	"bytes"
	"testing"

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
