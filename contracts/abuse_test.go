package contracts

import (
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// secondMember makes another member on chain, with its own renter on host
// i: a party that follows the protocol but is not the world's renter.
func (w *world) secondMember(t *testing.T, i int, handle string) (*Renter, chain.Key, chain.MemberID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, _ := chain.GenerateKey()
	res, err := w.chain.Submit(ctx, k, chain.MsgCreateMember{Handle: handle})
	must(t, err)
	m, _ := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	h := w.net.Host(i)
	r := NewRenter(h, NewGossip(h, w.chain, quiet()), k, m.Member, w.chain, nil, quiet())
	t.Cleanup(func() { _ = r.Close() })
	return r, k, m.Member
}

// openProposal publishes p and collects its offers (acknowledging them)
// until enough valid ones came; the returned stop ends the collection and
// returns what came.
func openProposal(ctx context.Context, t *testing.T, r *Renter, p *Proposal, enough int) (col *collector, stop func() []Offer) {
	t.Helper()
	col = &collector{start: time.Now(), expect: p, enough: enough, done: make(chan struct{})}
	r.mu.Lock()
	r.open[p.ID] = col
	r.mu.Unlock()
	must(t, r.g.Publish(ctx, p))
	return col, func() []Offer {
		r.mu.Lock()
		delete(r.open, p.ID)
		r.mu.Unlock()
		col.mu.Lock()
		defer col.mu.Unlock()
		return append([]Offer(nil), col.offers...)
	}
}

// offersFor publishes a proposal for req with the given ID and returns
// the valid offers that came within a few seconds, without consigning.
func offersFor(ctx context.Context, t *testing.T, r *Renter, req Request, id ID) []Offer {
	t.Helper()
	p, err := r.Propose(req)
	must(t, err)
	p.ID = id
	p.Sign(r.key)
	col, stop := openProposal(ctx, t, r, p, 1)
	select {
	case <-col.done:
	case <-time.After(5 * time.Second):
	}
	var valid []Offer
	for _, o := range stop() {
		if o.Err == nil {
			valid = append(valid, o)
		}
	}
	return valid
}

// TestPendingOffersPerRenter: a member that publishes MaxPendingOffers
// proposals (each valid, acknowledged, its TTL the longest allowed) holds
// at most MaxPendingPerRenter of the provider's pending offers, each for
// at most PendingOfferTTL; another member still gets an offer, and the
// proposals left unanswered are counted.
func TestPendingOffersPerRenter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and publishes a thousand proposals")
	}
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	w.waitTopicPeers(2, topicA, 1)
	honest := w.renterAt(1)
	flooder, _, _ := w.secondMember(t, 2, "flooder")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	req := w.request(1, 60*day, 1)
	req.TTL = MaxTTL
	var stops []func() []Offer
	for i := range MaxPendingOffers {
		p, err := flooder.Propose(req)
		must(t, err)
		_, stop := openProposal(ctx, t, flooder, p, 1<<30)
		stops = append(stops, stop)
		if i%16 == 15 { // gossipsub drops what overflows a peer's queue
			eventually(t, "the provider saw the proposals", func() bool { return prov.resp.Stats().Proposals >= int64(i+1) })
		}
	}
	eventually(t, "the flooder's offers settled", func() bool {
		s := prov.resp.Stats()
		return s.Proposals == MaxPendingOffers && s.Offers+s.OfferFailed+s.Busy == MaxPendingOffers
	})
	s := prov.resp.Stats()
	if s.Offers > MaxPendingPerRenter || s.Busy < MaxPendingOffers-MaxPendingPerRenter {
		t.Errorf("one renter got %d offers, %d proposals refused as busy; want at most %d offers", s.Offers, s.Busy, MaxPendingPerRenter)
	}
	if got := counter(t, prov.reg, "satchel_contracts_proposals_answered_total", "busy"); got != float64(s.Busy) {
		t.Errorf("busy metric %v, stats %d", got, s.Busy)
	}
	prov.resp.mu.Lock()
	for id, po := range prov.resp.pending {
		if po.expires.After(time.Now().Add(PendingOfferTTL)) {
			t.Errorf("offer %s pending until %v, more than %v from now", id, po.expires, PendingOfferTTL)
		}
	}
	prov.resp.mu.Unlock()

	req2 := w.request(5<<20, 60*day, 1)
	req2.Window = 10 * time.Second
	req2.Enough = 1
	n, err := honest.renter.Negotiate(ctx, req2)
	if err != nil || len(n.Contracts) != 1 {
		t.Fatalf("another member's Negotiate during the flood: %v", err)
	}
	for _, stop := range stops {
		stop()
	}
}
