package contracts

import (
	"context"
	"testing"
	"time"
)

// TestUndeliveredGrantDropped: the renter gives up on its CONSIGN while
// the provider is still checking it (a slow chain read) and the connection
// drops; the provider then consigns, but its answer cannot be written. The
// grant is dropped and its room given back once the renter could no
// longer ask again (undeliveredTTL, shortened here), while the grant of a
// CONSIGN answered before stays open with its room.
func TestUndeliveredGrantDropped(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	slow := &slowAuth{entered: make(chan struct{}), release: make(chan struct{})}
	w.wrapAuth = func(a Authority) Authority { slow.Authority = a; return slow }
	prov := w.responder(0, "", topicA)
	prov.resp.mu.Lock()
	prov.resp.undeliveredTTL = 100 * time.Millisecond
	prov.resp.mu.Unlock()
	ledger := prov.resp.room.(*Ledger)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	kept, err := renter.renter.Consign(ctx, w.oneOffer(ctx, t, renter.renter))
	must(t, err)
	offered := w.oneOffer(ctx, t, renter.renter)
	slow.armed.Store(true)
	cctx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	done := make(chan error, 1)
	go func() {
		_, err := renter.renter.Consign(cctx, offered)
		done <- err
	}()
	select {
	case <-slow.entered:
	case <-ctx.Done():
		t.Fatal("the CONSIGN never reached the provider's chain check")
	}
	giveUp()
	_ = w.net.Host(0).Libp2p().Network().ClosePeer(w.net.Host(1).ID())
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the CONSIGN the renter gave up on was answered")
		}
	case <-ctx.Done():
		t.Fatal("the renter did not give up")
	}
	close(slow.release)

	eventually(t, "the provider consigns the contract the renter gave up on", func() bool { return prov.resp.Stats().Consigned == 2 })
	eventually(t, "the undelivered grant dropped", func() bool { return prov.resp.Stats().Undelivered == 1 })
	if n, r := prov.resp.OpenGrants(), ledger.Reserved(); n != 1 || r != kept.Contract.Size {
		t.Errorf("after the undelivered grant dropped: %d grants open, %d bytes reserved; want the delivered one's, 1 and %d", n, r, kept.Contract.Size)
	}
	if g, ok := prov.resp.Grant(kept.Grant.Session[:]); !ok || g.ContractID != kept.Contract.ID {
		t.Errorf("the delivered grant: %+v, %v; want it open", g, ok)
	}
	prov.resp.mu.Lock()
	_, still := prov.resp.consigned[offered.ID]
	prov.resp.mu.Unlock()
	if still {
		t.Errorf("contract %s keeps a grant its renter never learned of", offered.ID)
	}
}
