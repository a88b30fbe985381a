package contracts

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFailedBindReleasesGrant: a BIND whose contract the provider cannot
// record (its contract store fails; the node answers FAILED) releases the
// session's grant and its room at once, rather than counting them up to
// the grant's hour: the object is recorded and the session ended by then.
// A BIND repeated after the grant is gone still records the contract.
func TestFailedBindReleasesGrant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 2, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	renter := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var made []Consigned
	for range 2 {
		req := w.request(5<<20, 60*day, 1)
		req.Enough = 1
		n, err := renter.renter.Negotiate(ctx, req)
		if err != nil || len(n.Contracts) != 1 {
			t.Fatalf("Negotiate: %v", err)
		}
		made = append(made, n.Contracts[0])
	}
	room := prov.resp.room.(*Ledger)
	if room.Open() != 2 || room.Reserved() != 10<<20 {
		t.Fatalf("%d uploads open, %d bytes reserved; want 2 and 10 MiB", room.Open(), room.Reserved())
	}

	// A BIND repeated after the grant went records the contract.
	again := made[1]
	prov.resp.Release(again.Grant.Session[:])
	must(t, prov.resp.Bound(again.Grant.Session[:], 8))
	if obj, ok, err := prov.store.Bound(again.Contract.ID, again.Contract.Provider); err != nil || !ok || obj != 8 {
		t.Fatalf("contract bound after its grant went: object %d, %v, %v; want 8", obj, ok, err)
	}

	failed := made[0]
	must(t, prov.store.Close()) // every write fails from now on
	if err := prov.resp.Bound(failed.Grant.Session[:], 7); err == nil {
		t.Fatal("Bound with the contract store closed succeeded")
	}
	if _, ok := prov.resp.Grant(failed.Grant.Session[:]); ok || prov.resp.OpenGrants() != 0 {
		t.Errorf("grant still live after a failed bind (%d open); want it released", prov.resp.OpenGrants())
	}
	if room.Open() != 0 || room.Reserved() != 0 {
		t.Errorf("after a failed bind %d uploads open, %d bytes reserved; want none", room.Open(), room.Reserved())
	}
	if _, err := prov.resp.ExtendGrant(ctx, failed.Grant.Session[:], 1<<20, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("a chunk under the failed bind's session: %v; want ErrNotFound", err)
	}
}
