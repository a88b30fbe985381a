package contracts

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
)

// The Responder's answers to proposals: it hears them on its topics,
// holds a bounded pending slot for each, and offers a signed contract
// (or a refusal) to the renter.

// listen answers the proposals sub yields until the responder closes.
func (r *Responder) listen(sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		m, err := sub.Next(r.ctx)
		if err != nil {
			return
		}
		p, ok := ProposalOf(m)
		if !ok || m.ReceivedFrom == r.h.ID() && m.GetFrom() == r.h.ID() {
			continue
		}
		// One goroutine per proposal, bounded by the pending-offer cap.
		err = r.reservePending(p)
		if errors.Is(err, errAnswering) {
			// A copy the renter published again (offers were short): this
			// provider is answering, or answered, the first.
			r.metrics.answer("duplicate")
			continue
		}
		r.count(func(s *ResponderStats) { s.Proposals++ })
		if err != nil {
			r.count(func(s *ResponderStats) { s.Busy++ })
			r.metrics.answer("busy")
			r.log.Debug("proposal not answered", "proposal", p.ID, "renter", p.Renter, "err", err)
			continue
		}
		r.wg.Go(func() { r.answer(p) })
	}
}

// errAnswering means a proposal is being answered, or was: its offer
// waits for a CONSIGN (or is being consigned).
var errAnswering = errors.New("contracts: already answering the proposal")

// pendingOffer is an offer awaiting CONSIGN until it expires; a nil
// contract holds the slot while the offer is being made.
type pendingOffer struct {
	c       *Contract
	renter  chain.Account
	expires time.Time
}

// pendingExpiry is when an offer made now on p stops waiting for its
// CONSIGN: with the proposal, or PendingOfferTTL from now if sooner, so a
// long proposal TTL does not hold a slot for minutes.
func pendingExpiry(p *Proposal, now time.Time) time.Time {
	return minTime(p.Expires(), now.Add(PendingOfferTTL))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// reservePending holds a pending slot for proposal p, so a flood cannot
// start unbounded work, nor one renter take every slot. When p's renter
// already holds MaxPendingPerRenter slots, its offer that lapses soonest
// (the oldest) is dropped to make room: offers a renter did not choose
// wait until they lapse, and an honest renter making many puts must not
// be throttled by them, while a flooder only displaces its own. It fails
// with ErrBusy when every slot of the renter is still being answered, when
// the provider holds MaxPendingOffers, or when the ID is taken.
func (r *Responder) reservePending(p *Proposal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	mine := 0
	var oldest ID
	var oldestAt time.Time
	for k, po := range r.pending { // drop offers nobody consigned
		switch {
		case now.After(po.expires):
			delete(r.pending, k)
		case po.renter == p.Renter:
			mine++
			if po.c != nil && (oldestAt.IsZero() || po.expires.Before(oldestAt)) {
				oldest, oldestAt = k, po.expires
			}
		}
	}
	_, taken := r.pending[p.ID]
	_, changing := r.changing[p.ID]
	switch {
	case taken || changing:
		return fmt.Errorf("%w: proposal %s", errAnswering, p.ID)
	case mine >= MaxPendingPerRenter && oldestAt.IsZero():
		return fmt.Errorf("%w: renter %s has %d proposals being answered, the most one renter may", ErrBusy, p.Renter, mine)
	case mine >= MaxPendingPerRenter:
		delete(r.pending, oldest)
	case len(r.pending) >= MaxPendingOffers:
		return fmt.Errorf("%w: %d offers pending, the most this provider keeps", ErrBusy, len(r.pending))
	}
	r.pending[p.ID] = pendingOffer{renter: p.Renter, expires: pendingExpiry(p, now)}
	return nil
}

func (r *Responder) dropPending(id ID) {
	r.mu.Lock()
	delete(r.pending, id)
	r.mu.Unlock()
}

// answer offers on proposal p when the chain assigns its bag to this
// provider's bucket and p's renter owns the bag; otherwise it stays silent.
func (r *Responder) answer(p *Proposal) {
	ctx, cancel := context.WithDeadline(r.ctx, p.Expires())
	defer cancel()
	if err := r.auth.CheckBag(ctx, p.Bag, p.Renter); err != nil {
		r.dropPending(p.ID)
		if errors.Is(err, ErrNotOwner) {
			r.count(func(s *ResponderStats) { s.NotOwner++ })
			r.metrics.answer("not_owner")
			r.log.Debug("proposal by a renter that does not own the bag", "proposal", p.ID, "renter", p.Renter, "err", err)
			return
		}
		r.count(func(s *ResponderStats) { s.NotAssigned++ })
		r.metrics.answer("not_assigned")
		r.log.Debug("proposal for a bag not ours", "proposal", p.ID, "err", err)
		return
	}
	c := r.contractFor(p)
	offer := &pb.Offer{ProposalId: p.ID[:]}
	if err := r.idFree(c.ID); err != nil {
		r.dropPending(p.ID)
		r.metrics.answer("id_taken")
		offer.Refusal = refusal(err)
	} else if err := r.room.Fits(ctx, c); err != nil {
		r.dropPending(p.ID)
		if errors.Is(err, ErrBusy) { // the member's, or the node's, open uploads
			r.count(func(s *ResponderStats) { s.Busy++ })
			r.metrics.answer("busy")
		} else {
			r.count(func(s *ResponderStats) { s.NoRoom++ })
			r.metrics.answer("no_room")
		}
		offer.Refusal = refusal(err)
	} else {
		c.SignAsProvider(r.id.Key)
		offer.Contract = c.ToPB()
		r.mu.Lock()
		r.pending[p.ID] = pendingOffer{c: c, renter: p.Renter, expires: pendingExpiry(p, time.Now())}
		r.mu.Unlock()
	}
	if err := r.sendOffer(ctx, p, offer); err != nil {
		r.dropPending(p.ID)
		r.count(func(s *ResponderStats) { s.OfferFailed++ })
		r.metrics.answer("offer_failed")
		r.log.Debug("offer not delivered", "proposal", p.ID, "renter", p.RenterPeer, "err", err)
		return
	}
	if offer.Contract != nil {
		r.count(func(s *ResponderStats) { s.Offers++ })
		r.metrics.answer("offered")
	}
}

// contractFor fills the provider's side of a contract for p, starting now.
func (r *Responder) contractFor(p *Proposal) *Contract {
	start := time.Now().Truncate(time.Second)
	return &Contract{
		ID: p.ID, Topic: p.Topic, Terms: p.Terms,
		Start: start, End: start.Add(p.Duration),
		Renter: p.Renter, Member: p.Member,
		Provider: r.id.Key.Account(), Worker: r.id.Worker, Bucket: r.id.Bucket,
		ProviderPeer: r.h.ID(),
	}
}

func (r *Responder) sendOffer(ctx context.Context, p *Proposal, offer *pb.Offer) error {
	var addrs []ma.Multiaddr
	for _, b := range p.RenterAddrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			addrs = append(addrs, a)
		}
	}
	r.h.Libp2p().Peerstore().AddAddrs(p.RenterPeer, addrs, peerstore.TempAddrTTL)
	resp, err := exchange(ctx, r.h, p.RenterPeer, &pb.Request{Body: &pb.Request_Offer{Offer: offer}})
	if err != nil {
		return err
	}
	if rf := resp.GetRefusal(); rf != nil {
		return refusalError(rf)
	}
	if resp.GetOfferAck() == nil {
		return malformed("renter answered an offer with %T", resp.Body)
	}
	return nil
}
