package contracts

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
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
// the offers that came (usable or not) once want of them came, without
// consigning.
func offersFor(ctx context.Context, t *testing.T, r *Renter, req Request, id ID, want int) []Offer {
	t.Helper()
	p, err := r.Propose(req)
	must(t, err)
	p.ID = id
	p.Sign(r.key)
	col, stop := openProposal(ctx, t, r, p, 1<<30)
	eventually(t, "the offers", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		return len(col.offers) >= want
	})
	return stop()
}

// oneOffer publishes a proposal of 5 MiB for the world's bag and returns
// the one usable offer it gets, not consigned.
func (w *world) oneOffer(ctx context.Context, t *testing.T, r *Renter) *Contract {
	t.Helper()
	offers := offersFor(ctx, t, r, w.request(5<<20, 60*day, 1), NewID(), 1)
	if len(offers) != 1 || offers[0].Err != nil {
		t.Fatalf("offers %+v, want one usable", offers)
	}
	return offers[0].Contract
}

// TestPendingOffersPerRenter: a member that publishes MaxPendingOffers
// proposals (each valid, acknowledged, its TTL the longest allowed) holds
// at most MaxPendingPerRenter of the provider's pending offers, each for
// at most PendingOfferTTL — its later proposals displace its own earlier
// offers; another member still gets an offer, and the proposals left
// unanswered are counted.
func TestPendingOffersPerRenter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and publishes a thousand proposals")
	}
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	w.waitTopicPeers(2, topicA, 1)
	honest := w.renterAt(1)
	flooder, flooderKey, flooderMember := w.secondMember(t, 2, "flooder")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	flooderPending := func() (n int) {
		prov.resp.mu.Lock()
		defer prov.resp.mu.Unlock()
		for _, po := range prov.resp.pending {
			if po.renter == flooderKey.Account() {
				n++
			}
		}
		return n
	}
	req := w.request(1, 60*day, 1)
	req.Bag = w.ownBag(t, flooderKey, flooderMember) // a provider answers a bag's owner only
	req.TTL = MaxTTL
	var stops []func() []Offer
	for i := range MaxPendingOffers {
		p, err := flooder.Propose(req)
		must(t, err)
		_, stop := openProposal(ctx, t, flooder, p, 1<<30)
		stops = append(stops, stop)
		if i%16 == 15 { // gossipsub drops what overflows a peer's queue
			eventually(t, "the provider saw the proposals", func() bool { return prov.resp.Stats().Proposals >= int64(i+1) })
			if n := flooderPending(); n > MaxPendingPerRenter {
				t.Fatalf("the flooder holds %d pending offers, more than %d", n, MaxPendingPerRenter)
			}
		}
	}
	eventually(t, "the flooder's offers settled", func() bool {
		s := prov.resp.Stats()
		return s.Proposals == MaxPendingOffers && s.Offers+s.OfferFailed+s.Busy == MaxPendingOffers
	})
	s := prov.resp.Stats()
	if n := flooderPending(); n > MaxPendingPerRenter {
		t.Errorf("one renter holds %d pending offers (%d offered, %d busy); want at most %d", n, s.Offers, s.Busy, MaxPendingPerRenter)
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

// TestProposalIDReuse: after one member's contract is consigned, a second
// member's proposal, CONSIGN or MIRROR under the same ID gets a MISMATCH
// refusal; the stored contract and the provider's reserved room stay as
// they were.
func TestProposalIDReuse(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	w.waitTopicPeers(2, topicA, 1)
	renter := w.renterAt(1)
	other, otherKey, otherMember := w.secondMember(t, 2, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	n, err := renter.renter.Negotiate(ctx, req)
	must(t, err)
	c := n.Contracts[0].Contract
	ledger := prov.resp.room.(*Ledger)
	reserved := ledger.Reserved()
	unchanged := func(what string) {
		t.Helper()
		st, err := prov.store.Get(c.ID, c.Provider)
		if err != nil || !bytes.Equal(st.SigningBytes(), c.SigningBytes()) {
			t.Errorf("after %s the provider stores %+v (%v), want the first member's contract", what, st, err)
		}
		if got := ledger.Reserved(); got != reserved {
			t.Errorf("after %s the ledger reserves %d bytes, want %d", what, got, reserved)
		}
	}

	otherReq := w.request(7<<20, 60*day, 1)
	otherReq.Bag = w.ownBag(t, otherKey, otherMember) // a provider answers a bag's owner only
	offers := offersFor(ctx, t, other, otherReq, c.ID, 1)
	for _, o := range offers {
		if o.Err == nil {
			if _, err := other.Consign(ctx, o.Contract); err == nil {
				t.Error("a second member consigned a contract under a taken ID")
			}
		}
	}
	if len(offers) != 1 || !errors.Is(offers[0].Err, ErrRefused) || !errors.Is(offers[0].Err, errMismatch) {
		t.Fatalf("offers on a proposal under a taken ID: %+v, want one MISMATCH refusal", offers)
	}
	unchanged("a proposal under its ID")

	// A contract under the ID the provider signed (an offer never
	// consigned, say) is not taken by MIRROR either.
	m := *c
	m.Renter, m.Member, m.Size, m.Object = otherKey.Account(), otherMember, 7<<20, 9
	m.SignAsProvider(w.provs[0].Key)
	m.SignAsRenter(otherKey)
	if err := other.Mirror(ctx, &m, []peer.ID{w.net.Host(1).ID()}); !errors.Is(err, errMismatch) {
		t.Errorf("MIRROR under a taken ID: %v, want a MISMATCH refusal", err)
	}
	unchanged("a MIRROR under its ID")
}

// TestRenewByRenterOnly: RENEW extends a contract for its own renter only.
// A second member's renewal (naming itself, or signed by it) and a renewal
// that shortens the contract are refused, the stored contract unchanged.
func TestRenewByRenterOnly(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	other, otherKey, otherMember := w.secondMember(t, 2, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	n, err := renter.renter.Negotiate(ctx, req)
	must(t, err)
	c := n.Contracts[0].Contract
	unchanged := func(what string) {
		t.Helper()
		st, err := prov.store.Get(c.ID, c.Provider)
		if err != nil || !bytes.Equal(st.SigningBytes(), c.SigningBytes()) || !bytes.Equal(st.RenterSignature, c.RenterSignature) {
			t.Errorf("after %s the provider stores %+v (%v), want the contract as consigned", what, st, err)
		}
	}

	takeover := *c
	takeover.Renter, takeover.Member = otherKey.Account(), otherMember
	takeover.End = time.Now().Add(time.Minute).Truncate(time.Second)
	takeover.SignAsRenter(otherKey)
	if _, err := other.sendRenew(ctx, &takeover); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrForbiddenChange) {
		t.Errorf("RENEW naming a second member as renter: %v, want a FORBIDDEN refusal", err)
	}
	unchanged("a RENEW naming a second member")

	forged := *c
	forged.End = c.End.Add(day)
	forged.RenterSignature = otherKey.Sign(forged.SigningBytes()) // the renter named is still the first
	if _, err := other.sendRenew(ctx, &forged); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrSignature) {
		t.Errorf("RENEW signed by a second member: %v, want a SIGNATURE refusal", err)
	}
	unchanged("a RENEW signed by a second member")

	if _, err := renter.renter.Renew(ctx, c, c.End.Add(-day)); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrForbiddenChange) {
		t.Errorf("RENEW to an earlier end: %v, want a FORBIDDEN refusal", err)
	}
	unchanged("a RENEW to an earlier end")

	renewed, err := renter.renter.Renew(ctx, c, c.End.Add(day))
	if err != nil {
		t.Fatalf("the renter's own renewal: %v", err)
	}
	if st, err := prov.store.Get(c.ID, c.Provider); err != nil || !st.End.Equal(renewed.End) || st.Renter != c.Renter {
		t.Errorf("after the renter's renewal the provider stores %+v (%v)", st, err)
	}
}

// TestConsignOnce: concurrent CONSIGNs of one offer — the others arrive
// while the first is in flight — open one grant and reserve its room once
// (those answered get its session); a CONSIGN by another member first does
// not cancel the offer.
func TestConsignOnce(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	// A slow chain read: the ledger's Reserve holds the first CONSIGN until
	// another CONSIGN of the offer waits for it at the provider, so the
	// CONSIGNs overlap.
	var room *meetingRoom
	w.wrapRoom = func(r Room) Room {
		room = &meetingRoom{Ledger: r.(*Ledger)}
		return room
	}
	prov := w.responder(0, "", topicA)
	room.overlapped = func() bool { // from the responder's goroutine: no t
		mfs, err := prov.reg.Gather()
		for _, mf := range mfs {
			if err == nil && mf.GetName() == "satchel_contracts_consign_waits_total" && len(mf.GetMetric()) == 1 {
				return mf.GetMetric()[0].GetCounter().GetValue() >= 1
			}
		}
		return false
	}
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	other, _, _ := w.secondMember(t, 2, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offered := w.oneOffer(ctx, t, renter.renter)
	ledger := room.Ledger
	reserved, grants := ledger.Reserved(), prov.resp.OpenGrants()

	if _, err := other.Consign(ctx, offered); !errors.Is(err, errMismatch) {
		t.Fatalf("another member's CONSIGN of the offer: %v, want a MISMATCH refusal", err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]Consigned, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = renter.renter.Consign(ctx, offered) })
	}
	wg.Wait()
	if !room.met() {
		t.Fatalf("no CONSIGN of the offer reached the provider while the first was in flight (within %v): the CONSIGNs did not overlap", overlapWait)
	}
	sessions := map[[16]byte]int{}
	for i, err := range errs {
		switch {
		case err == nil:
			sessions[got[i].Grant.Session]++
		case !errors.Is(err, ErrBusy):
			t.Errorf("a repeated CONSIGN: %v, want the grant or BUSY", err)
		}
	}
	if len(sessions) != 1 {
		t.Errorf("%d concurrent CONSIGNs of one offer were answered with sessions %v, want one session", n, sessions)
	}
	if got := prov.resp.OpenGrants(); got != grants+1 {
		t.Errorf("%d grants open, want %d", got, grants+1)
	}
	if got := ledger.Reserved(); got != reserved+offered.Size {
		t.Errorf("ledger reserves %d bytes, want %d", got, reserved+offered.Size)
	}
}

// meetingRoom is a Ledger whose first Reserve waits, as a slow chain
// read, until overlapped reports another request waiting for it, or
// overlapWait passed (then met reports false).
type meetingRoom struct {
	*Ledger
	overlapped func() bool
	mu         sync.Mutex
	calls      int
	overlap    bool
}

// overlapWait bounds the first Reserve's wait for an overlapping CONSIGN:
// long for one sent at the same time, inside the renter's wait for its
// answer (StreamTimeout).
const overlapWait = StreamTimeout * 3 / 4

func (m *meetingRoom) Reserve(ctx context.Context, c *Contract) (Grant, error) {
	m.mu.Lock()
	m.calls++
	first := m.calls == 1
	m.mu.Unlock()
	if first {
		met := m.wait(ctx)
		m.mu.Lock()
		m.overlap = met
		m.mu.Unlock()
	}
	return m.Ledger.Reserve(ctx, c)
}

// wait polls overlapped until it holds, overlapWait passed or ctx ended.
func (m *meetingRoom) wait(ctx context.Context) bool {
	deadline := time.NewTimer(overlapWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !m.overlapped() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// met reports whether the first Reserve saw another request overlap it.
func (m *meetingRoom) met() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overlap
}

// blockingMirrorer counts the copies it is asked for and holds each until
// release is closed.
type blockingMirrorer struct {
	started chan ID
	release chan struct{}
}

func (b *blockingMirrorer) CheckMirror(_ context.Context, c *Contract) (chain.DataObject, error) {
	return chain.DataObject{ID: c.Object, Bag: c.Bag, Size: c.Size, ContentID: c.ContentID}, nil
}

func (b *blockingMirrorer) Mirror(ctx context.Context, c *Contract, _ chain.DataObject, _ []peer.ID) error {
	b.started <- c.ID
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

// TestMirrorReplays: 200 MIRRORs of one contract start one copy; MIRRORs
// of more contracts than MaxMirrors while copies run are refused BUSY; an
// ended contract or one naming no registered object is refused.
func TestMirrorReplays(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	mirr := &blockingMirrorer{started: make(chan ID, 1000), release: make(chan struct{})}
	w.mirrorer = mirr
	prov := w.responder(0, "", topicA)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Contracts the provider signed (offers never consigned, say) for a
	// registered object, countersigned by the renter.
	contract := func(mod func(*Contract)) *Contract {
		now := time.Now().Truncate(time.Second)
		c := &Contract{ID: NewID(), Topic: topicA, Terms: w.request(5<<20, 60*day, 1).Terms,
			Start: now, End: now.Add(60 * day), Renter: w.member.Account(), Member: w.memberID,
			Worker: w.provs[0].Worker, Bucket: w.provs[0].Bucket, ProviderPeer: w.net.Host(0).ID()}
		c.Object = 7
		if mod != nil {
			mod(c)
		}
		c.SignAsProvider(w.provs[0].Key)
		c.SignAsRenter(w.member)
		return c
	}
	sources := []peer.ID{w.net.Host(1).ID()}

	c := contract(nil)
	for i := range 200 {
		if err := renter.renter.Mirror(ctx, c, sources); err != nil {
			t.Fatalf("MIRROR %d of one contract: %v", i, err)
		}
	}
	if got := <-mirr.started; got != c.ID {
		t.Fatalf("copy of %s started, want %s", got, c.ID)
	}
	for range MaxMirrors - 1 {
		must(t, renter.renter.Mirror(ctx, contract(nil), sources))
		<-mirr.started
	}
	if err := renter.renter.Mirror(ctx, contract(nil), sources); !errors.Is(err, ErrBusy) {
		t.Errorf("MIRROR beyond %d copies running: %v, want BUSY", MaxMirrors, err)
	}
	if got := prov.resp.Stats().Mirrors; got != MaxMirrors {
		t.Errorf("%d copies started, want %d", got, MaxMirrors)
	}

	ended := contract(func(c *Contract) { c.Start, c.End = c.Start.Add(-2*day), c.Start.Add(-day) })
	if err := renter.renter.Mirror(ctx, ended, sources); !errors.Is(err, ErrExpired) {
		t.Errorf("MIRROR of an ended contract: %v, want EXPIRED", err)
	}
	unregistered := contract(func(c *Contract) { c.Object = 0 })
	if err := renter.renter.Mirror(ctx, unregistered, sources); !errors.Is(err, ErrMalformed) {
		t.Errorf("MIRROR naming no registered object: %v, want MALFORMED", err)
	}

	close(mirr.release)
	eventually(t, "the copies to end", func() bool {
		prov.resp.mu.Lock()
		defer prov.resp.mu.Unlock()
		return len(prov.resp.mirroring) == 0
	})
	if err := renter.renter.Mirror(ctx, c, sources); err != nil {
		t.Fatalf("MIRROR after the copy ended: %v", err)
	}
	if got := <-mirr.started; got != c.ID {
		t.Errorf("copy of %s started, want %s again", got, c.ID)
	}
	if n := len(mirr.started); n != 0 {
		t.Errorf("%d more copies started, want none", n)
	}
}

// gatedRoom is a Ledger whose Fits waits until gate is closed: a provider
// slow to answer.
type gatedRoom struct {
	*Ledger
	gate chan struct{}
}

func (g *gatedRoom) Fits(ctx context.Context, c *Contract) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Ledger.Fits(ctx, c)
}

// TestOffersOnePerProvider: a peer with no role that answers a proposal
// first with MaxCollected refusals and MaxCollected junk offers does not
// crowd out the real provider's offer, and the provider's offer sent twice
// counts once.
func TestOffersOnePerProvider(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	gate := make(chan struct{})
	w.wrapRoom = func(r Room) Room { return &gatedRoom{Ledger: r.(*Ledger), gate: gate} }
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	w.waitTopicPeers(2, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	junk := w.net.Host(2)
	sub, release, err := NewGossip(junk, w.chain, quiet()).Subscribe(topicA)
	must(t, err)
	defer release()
	var wg sync.WaitGroup
	refused := make(chan error, 1)
	wg.Go(func() {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		p, _ := ProposalOf(m)
		var inner sync.WaitGroup
		for i := range 2 * MaxCollected {
			o := &pb.Offer{ProposalId: p.ID[:], Refusal: &pb.Refusal{Code: pb.Code_CODE_NO_ROOM, Reason: "junk"}}
			if i%2 == 1 {
				o = &pb.Offer{ProposalId: p.ID[:], Contract: &pb.Contract{Id: p.ID[:]}}
			}
			inner.Go(func() { _, _ = exchange(ctx, junk, p.RenterPeer, &pb.Request{Body: &pb.Request_Offer{Offer: o}}) })
		}
		inner.Wait()
		// The provider answers after the junk; this goroutine waits for its
		// offer without eventually (no t.Fatal off the test's goroutine).
		close(gate)
		for prov.resp.Stats().Offers == 0 {
			select {
			case <-ctx.Done():
				refused <- ctx.Err()
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		prov.resp.mu.Lock()
		c := prov.resp.pending[p.ID].c
		prov.resp.mu.Unlock()
		resp, err := exchange(ctx, w.net.Host(0), p.RenterPeer, &pb.Request{Body: &pb.Request_Offer{Offer: &pb.Offer{ProposalId: p.ID[:], Contract: c.ToPB()}}})
		if err == nil && resp.GetRefusal() != nil {
			err = refusalError(resp.GetRefusal())
		}
		refused <- err
	})
	req := w.request(5<<20, 60*day, 1)
	req.Window = 5 * time.Second
	req.Enough = 2 // the window runs out: the duplicate is sent meanwhile
	n, err := renter.renter.Negotiate(ctx, req)
	wg.Wait()
	if err != nil {
		t.Fatalf("Negotiate beside a junk peer: %v", err)
	}
	if err := <-refused; !errors.Is(err, ErrRefused) {
		t.Errorf("the provider's offer sent again: %v, want refused", err)
	}
	valid, junkKept := 0, 0
	for _, o := range n.Offers {
		switch {
		case o.Err == nil:
			valid++
			if o.From != w.net.Host(0).ID() {
				t.Errorf("usable offer from %s", o.From)
			}
		case o.From == junk.ID():
			junkKept++
		}
	}
	if valid != 1 || len(n.Contracts) != 1 || junkKept > 1 {
		t.Errorf("%d usable offers, %d contracts, %d junk offers kept; want 1, 1 and at most 1", valid, len(n.Contracts), junkKept)
	}
}

// TestPruneEndedContracts: a provider deletes its contracts EndedRetention
// after they ended, and keeps the others.
func TestPruneEndedContracts(t *testing.T) {
	w := newWorld(t, 1, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	now := time.Now().Truncate(time.Second)
	stored := func(end time.Time) *Contract {
		c := &Contract{ID: NewID(), Topic: topicA, Terms: w.request(5<<20, 60*day, 1).Terms,
			Start: end.Add(-60 * day), End: end, Member: w.memberID,
			Worker: w.provs[0].Worker, Bucket: w.provs[0].Bucket, ProviderPeer: w.net.Host(0).ID()}
		c.Renter = w.member.Account()
		c.SignAsProvider(w.provs[0].Key)
		c.SignAsRenter(w.member)
		must(t, prov.store.Put(c))
		return c
	}
	old := stored(now.Add(-EndedRetention - day))
	recent := stored(now.Add(-day))
	live := stored(now.Add(day))
	// The responder's own loop prunes at start too, and may be the one
	// that deletes it: while it holds the contract's claim, this prune
	// leaves it, so prune until it is gone (or a minute has passed).
	for deadline := time.Now().Add(time.Minute); ; {
		if n, err := prov.resp.prune(now); err != nil || n > 1 {
			t.Fatalf("prune: %d deleted, %v; want at most the one ended long ago", n, err)
		}
		_, err := prov.store.Get(old.ID, old.Provider)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a contract ended %v ago is still stored: %v", EndedRetention+day, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []*Contract{recent, live} {
		if _, err := prov.store.Get(c.ID, c.Provider); err != nil {
			t.Errorf("contract ending %v was pruned: %v", c.End, err)
		}
	}
}

// TestPruneKeepsRenewed: a contract renewed after the prune read the due
// contracts from the index (a RENEW completing between the read and the
// delete) is read again under its claim and kept; one that is still over
// is deleted. Both uploads were bound, so they are kept to their end.
func TestPruneKeepsRenewed(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	negotiate := func() *Contract {
		req := w.request(5<<20, 60*day, 1)
		req.Enough = 1
		n, err := renter.renter.Negotiate(ctx, req)
		must(t, err)
		if len(n.Contracts) != 1 {
			t.Fatalf("%d contracts, want 1", len(n.Contracts))
		}
		return n.Contracts[0].Contract
	}
	renewedC, overC := negotiate(), negotiate()
	for i, c := range []*Contract{renewedC, overC} {
		prov.resp.mu.Lock()
		s := prov.resp.consigned[c.ID]
		prov.resp.mu.Unlock()
		must(t, prov.resp.Bound(s[:], chain.ObjectID(i+1)))
	}
	// The prune runs as if a week and an hour after both ended; the renewal
	// completes after its List.
	now := overC.End.Add(EndedRetention + time.Hour)
	if renewedC.End.After(overC.End) {
		now = renewedC.End.Add(EndedRetention + time.Hour)
	}
	stale, err := prov.store.Due(now, pruneBatch)
	must(t, err)
	if len(stale) != 2 {
		t.Fatalf("%d contracts due, want both", len(stale))
	}
	renewed, err := renter.renter.Renew(ctx, renewedC, now.Add(day))
	must(t, err)
	n := 0
	for _, d := range stale {
		deleted, err := prov.resp.pruneOne(d.ID, now)
		must(t, err)
		if deleted {
			n++
		}
	}
	if st, err := prov.store.Get(renewedC.ID, renewedC.Provider); err != nil || !st.End.Equal(renewed.End) {
		t.Errorf("the contract renewed after the prune's List: stored %+v (%v), want it kept ending %v", st, err, renewed.End)
	}
	if _, err := prov.store.Get(overC.ID, overC.Provider); !errors.Is(err, ErrNotFound) || n != 1 {
		t.Errorf("the contract still over: %d deleted, Get %v; want it deleted", n, err)
	}
}

// TestManyPutsOneRenter: a renter negotiating many contracts in a row,
// each taking one of three offers, gets every provider's offer each time:
// the offers it did not choose (pending until they lapse) do not make a
// provider silent once MaxPendingPerRenter of them wait. Each upload is
// bound, as a put does, so its grant does not count among the member's
// MaxOpenPerMember open ones.
func TestManyPutsOneRenter(t *testing.T) {
	const provs = 3
	w := newWorld(t, provs+1, provs, provs, 0)
	byPeer := make(map[peer.ID]*Responder)
	for i := range provs {
		byPeer[w.net.Host(i).ID()] = w.responder(i, "", topicA).resp
	}
	w.waitTopicPeers(provs, topicA, provs)
	renter := w.renterAt(provs)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := range 2*MaxPendingPerRenter + 2 {
		req := w.request(1<<10, 60*day, 1)
		req.Enough = provs
		req.Window = 5 * time.Second
		n, err := renter.renter.Negotiate(ctx, req)
		if err != nil {
			t.Fatalf("negotiation %d: %v", i, err)
		}
		usable := 0
		for _, o := range n.Offers {
			if o.Err == nil {
				usable++
			}
		}
		if usable != provs || len(n.Contracts) != 1 {
			t.Fatalf("negotiation %d: %d usable offers, %d contracts; want %d and 1", i, usable, len(n.Contracts), provs)
		}
		cs := n.Contracts[0]
		resp := byPeer[cs.Contract.ProviderPeer]
		must(t, resp.Bound(cs.Grant.Session[:], chain.ObjectID(i+1)))
		resp.Release(cs.Grant.Session[:])
	}
}

// TestForgedConsignTakesNoClaim: a CONSIGN of the offered contract with a
// signature not the renter's is refused SIGNATURE before it claims the
// contract ID or takes the offer (the ID is held here meanwhile, so a
// CONSIGN that reached the claim would be refused BUSY); the renter's own
// CONSIGN then opens the grant.
func TestForgedConsignTakesNoClaim(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	_, otherKey, _ := w.secondMember(t, 2, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offered := w.oneOffer(ctx, t, renter.renter)

	release, err := prov.resp.claim(offered.ID)
	must(t, err)
	forged := *offered
	forged.RenterSignature = otherKey.Sign(forged.SigningBytes())
	resp, err := exchange(ctx, w.net.Host(2), offered.ProviderPeer, &pb.Request{Body: &pb.Request_Consign{Consign: &pb.Consign{Contract: forged.ToPB()}}})
	must(t, err)
	if rf := resp.GetRefusal(); rf.GetCode() != pb.Code_CODE_SIGNATURE {
		t.Errorf("a CONSIGN signed by another key: %v, want a SIGNATURE refusal before the claim", resp)
	}
	release()
	prov.resp.mu.Lock()
	po := prov.resp.pending[offered.ID]
	prov.resp.mu.Unlock()
	if po.c == nil {
		t.Fatal("the forged CONSIGN took the offer")
	}
	if _, err := renter.renter.Consign(ctx, offered); err != nil {
		t.Errorf("the renter's CONSIGN after a forged one: %v", err)
	}
}

// TestJunkPeersLeaveRoomForOffer: maxOfferPeers throwaway identities each
// sending one refusal on a proposal do not keep the real provider's offer,
// coming after them, out of the negotiation.
func TestJunkPeersLeaveRoomForOffer(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	gate := make(chan struct{})
	w.wrapRoom = func(r Room) Room { return &gatedRoom{Ledger: r.(*Ledger), gate: gate} }
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := renter.renter.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	_, stop := openProposal(ctx, t, renter.renter, p, 1)
	defer stop()
	for i := range maxOfferPeers + 8 {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		must(t, err)
		junk, err := peer.IDFromPrivateKey(k)
		must(t, err)
		o := &pb.Offer{ProposalId: p.ID[:], Refusal: &pb.Refusal{Code: pb.Code_CODE_NO_ROOM, Reason: "junk"}}
		if err := renter.renter.take(ctx, junk, o); err != nil {
			t.Fatalf("junk refusal %d: %v", i, err)
		}
	}
	close(gate) // the provider answers now
	eventually(t, "the provider's offer delivered or refused", func() bool {
		s := prov.resp.Stats()
		return s.Offers+s.OfferFailed > 0
	})
	valid := 0
	for _, o := range stop() {
		if o.Err == nil && o.From == w.net.Host(0).ID() {
			valid++
		}
	}
	if valid != 1 || prov.resp.Stats().OfferFailed != 0 {
		t.Errorf("%d usable offers from the provider, %d offers it failed to deliver; want 1 and 0", valid, prov.resp.Stats().OfferFailed)
	}
}

// A renter publishing for a member its key does not control is told so,
// with the next step, before its proposal leaves: no receiver would take
// it, and the local validator alone says only that validation failed.
func TestPublishForAnotherMemberRefused(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, _ := chain.GenerateKey()
	h := w.net.Host(1)
	r := NewRenter(h, NewGossip(h, w.chain, quiet()), k, w.memberID, w.chain, nil, quiet())
	t.Cleanup(func() { _ = r.Close() })
	p, err := r.Propose(w.request(1, 60*day, 1))
	must(t, err)
	err = r.g.Publish(ctx, p)
	if !errors.Is(err, ErrNotMember) || !strings.Contains(err.Error(), "controller") {
		t.Fatalf("publishing for a member the key does not control: %v; want ErrNotMember naming the controller", err)
	}
}
