package contracts

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/topics"
)

// Identity is who a provider is on chain: the storage worker's role key,
// its worker ID and the bucket it operates. The node's peer ID comes from
// its host.
type Identity struct {
	Key    chain.Key
	Worker chain.WorkerID
	Bucket chain.StorageBucketID
}

// Mirrorer copies a contract's object from providers that hold it. The
// provider node implements it with its sync.
type Mirrorer interface {
	// CheckMirror checks, before anything is reserved or stored, that c's
	// object can be mirrored: it exists and its size (and content ID, when
	// c names one) are c's. It returns the object as the chain holds it; a
	// mismatch wraps ErrMalformed.
	CheckMirror(ctx context.Context, c *Contract) (chain.DataObject, error)
	// Mirror copies (or queues the copy of) c's object o, as CheckMirror
	// returned it, from sources. The responder holds the contract's copy
	// slot until it returns.
	Mirror(ctx context.Context, c *Contract, o chain.DataObject, sources []peer.ID) error
}

// ResponderOption configures a Responder.
type ResponderOption func(*Responder)

// WithTopics sets the contract topics the responder subscribes to.
func WithTopics(ts ...topics.Topic) ResponderOption {
	return func(r *Responder) { r.topics = append(r.topics, ts...) }
}

// WithMirrorer lets the responder take MIRROR requests; without it they
// are refused.
func WithMirrorer(m Mirrorer) ResponderOption { return func(r *Responder) { r.mirror = m } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) ResponderOption { return func(r *Responder) { r.log = l } }

// Responder is a provider's side of contracts: it subscribes to its
// contract topics, answers proposals for bags the chain assigned to its
// bucket with signed offers, and serves /satchel/contract/1.0.0 (CONSIGN,
// RETRIEVE, MIRROR, RENEW), keeping contracts in its Store.
type Responder struct {
	h       *p2p.Host
	g       *Gossip
	id      Identity
	auth    Authority
	room    Room
	store   *Store
	mirror  Mirrorer
	metrics *Metrics
	log     *slog.Logger
	topics  []topics.Topic

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	pending   map[ID]pendingOffer  // offered, awaiting CONSIGN
	changing  map[ID]chan struct{} // contracts a CONSIGN, MIRROR or RENEW is checking and writing; closed when it ends
	mirroring map[ID]struct{}      // contracts whose object is being copied
	grants    map[[16]byte]Grant   // store sessions opened by CONSIGN, until they lapse (ExtendGrant slides them)
	consigned map[ID][16]byte      // the session of each contract in grants
	// grantsSweepAt is no later than the first grant's end: grants are
	// swept for lapsed ones only from then on, not at every CONSIGN.
	grantsSweepAt time.Time
	// undelivered are the grants whose answer could not be written, each
	// dropped when its timer fires (after undeliveredTTL) unless a
	// CONSIGN is answered with it first.
	undelivered    map[[16]byte]*time.Timer
	undeliveredTTL time.Duration
	delivered      map[[16]byte]struct{} // grants an answer of was written

	stats ResponderStats
}

// ResponderStats counts what a responder did with proposals.
type ResponderStats struct {
	Proposals, Offers, NotAssigned, NoRoom, OfferFailed, Consigned int64
	// NotOwner counts proposals left unanswered because their renter is
	// not the bag's owner on chain.
	NotOwner int64
	// Busy counts proposals left unanswered because their renter already
	// had MaxPendingPerRenter proposals being answered, or the provider
	// MaxPendingOffers offers pending.
	Busy int64
	// Mirrors counts the copies MIRROR requests started.
	Mirrors int64
	// Undelivered counts the grants dropped, with their room, because
	// their answer never reached the renter (it gave up on a slow CONSIGN).
	Undelivered int64
}

// NewResponder starts a provider's responder on h: it serves the contract
// protocol at once and subscribes to the WithTopics topics.
func NewResponder(h *p2p.Host, g *Gossip, id Identity, auth Authority, room Room, store *Store, opts ...ResponderOption) (*Responder, error) {
	if id.Key.IsZero() {
		return nil, errors.New("contracts: responder needs the worker's role key")
	}
	r := &Responder{h: h, g: g, id: id, auth: auth, room: room, store: store,
		log: slog.Default(), pending: make(map[ID]pendingOffer), changing: make(map[ID]chan struct{}), mirroring: make(map[ID]struct{}), grants: make(map[[16]byte]Grant), consigned: make(map[ID][16]byte),
		undelivered: make(map[[16]byte]*time.Timer), undeliveredTTL: undeliveredGrantTTL, delivered: make(map[[16]byte]struct{})}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("component", "contracts", "bucket", id.Bucket)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, t := range r.topics {
		sub, err := g.Subscribe(t)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.wg.Go(func() { r.listen(sub) })
	}
	r.wg.Go(r.pruneLoop)
	h.Protocol().SetHandler(Protocol, r.serve)
	r.log.Info("contract topics subscribed", "topics", r.topics)
	return r, nil
}

// Topics returns the contract topics the responder is subscribed to.
func (r *Responder) Topics() []topics.Topic { return append([]topics.Topic(nil), r.topics...) }

// Stats returns what the responder did so far.
func (r *Responder) Stats() ResponderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Responder) count(f func(*ResponderStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// Grant returns the store grant a CONSIGN opened under session (the
// session field of /satchel/store/1.0.0 requests), while it has not lapsed.
// The store handler asks it before it takes a session's chunks: a provider
// stores only under a consigned contract.
func (r *Responder) Grant(session []byte) (Grant, bool) {
	if len(session) != 16 {
		return Grant{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.grants[[16]byte(session)]
	if !ok || time.Now().After(g.Expires) {
		return Grant{}, false
	}
	return g, true
}

// ExtendGrant slides the live grant under session with its upload: the
// provider node asks it for each chunk request it agrees to take into the
// session (a renter's, or one a pipeline hop forwards), with total, the
// bytes the session would then hold (its chunks stored, those agreed to
// and in flight, and this one), and stored, those of them on disk. The
// contract's reservation first grows to cover total (a Room that is a
// RoomGrower, as *Ledger: it reaches one window ahead, reading the room
// when it must grow, and counts only stored as no longer pending on the
// disk);
// then the grant, and the reservation, last until max(their end, now + the
// grant TTL), no later than the contract's End, so an upload that takes
// longer than one TTL keeps its session as long as its chunks keep coming,
// while an idle grant lapses one TTL after its last chunk. It returns the
// grant as extended (the store handler caps the session's expiry at its
// Expires); an error wrapping ErrNotFound when no live grant is under
// session or the Room no longer counts its reservation, ErrNoRoom when
// the room ran out before total. A chunk under the grant shows that
// its renter learned the session: the grant is no longer dropped as
// undelivered.
func (r *Responder) ExtendGrant(ctx context.Context, session []byte, total, stored uint64) (Grant, error) {
	g, ok := r.Grant(session)
	if !ok {
		return Grant{}, fmt.Errorf("%w: no live grant under this session", ErrNotFound)
	}
	if gr, ok := r.room.(RoomGrower); ok {
		// Outside r.mu: growing may read the chain.
		if err := gr.Grow(ctx, g.ContractID, total, stored); err != nil {
			return Grant{}, err
		}
	}
	g, err := r.slideGrant([16]byte(session))
	if err != nil {
		return Grant{}, err
	}
	r.keepOpen(g)
	return g, nil
}

// slideGrant slides the live grant under s and its reservation.
func (r *Responder) slideGrant(s [16]byte) (Grant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.grants[s]
	if !ok || time.Now().After(g.Expires) {
		return Grant{}, fmt.Errorf("%w: no live grant under this session", ErrNotFound)
	}
	r.deliveredLocked(s)
	ext, ok := r.room.(RoomExtender)
	if !ok {
		return g, nil
	}
	// Under r.mu, so a Release or a lapse dropping the grant meanwhile
	// cannot leave it extended without its reservation.
	until, live := ext.Extend(g.ContractID)
	if !live {
		return Grant{}, fmt.Errorf("%w: the reservation of contract %s lapsed", ErrNotFound, g.ContractID)
	}
	if until.After(g.Expires) {
		g.Expires = until
		r.grants[s] = g
	}
	return g, nil
}

// keepOpen moves the stored deadline of g's open upload a grant TTL past
// g's end once g slid to within half a TTL of it: one write per half TTL
// of upload, so the deadline always lies past the grant's end.
func (r *Responder) keepOpen(g Grant) {
	if g.openUntil.IsZero() || g.Expires.Add(GrantTTL/2).Before(g.openUntil) {
		return
	}
	until := g.Expires.Add(GrantTTL)
	if err := r.store.ExtendOpen(g.ContractID, r.id.Key.Account(), until); err != nil {
		r.log.Warn("keeping an open upload's contract", "contract", g.ContractID, "err", err)
		return
	}
	r.mu.Lock()
	if cur, ok := r.grants[g.Session]; ok && cur.openUntil.Before(until) {
		cur.openUntil = until
		r.grants[g.Session] = cur
	}
	r.mu.Unlock()
}

// sweepGrantsLocked drops the grants that lapsed, once one may have
// (grantsSweepAt). Called with r.mu held.
func (r *Responder) sweepGrantsLocked(now time.Time) {
	if r.grantsSweepAt.IsZero() || now.Before(r.grantsSweepAt) {
		return
	}
	r.grantsSweepAt = time.Time{}
	for _, g := range r.grants {
		if now.After(g.Expires) {
			r.dropGrant(g)
		} else {
			r.grantsSweepAt = minNonZero(r.grantsSweepAt, g.Expires)
		}
	}
}

// Bound records that the upload under session was bound to data object
// obj: its contract, stored open at CONSIGN, is kept until its end. The
// provider node calls it at BIND before it answers BOUND, also for a
// session whose grant is gone (the node restarted while its renter held
// every chunk); a session no contract opened is ignored.
func (r *Responder) Bound(session []byte, obj chain.ObjectID) error {
	if len(session) != 16 {
		return nil
	}
	id, ok, err := r.store.Settle([16]byte(session), obj)
	if err != nil {
		return fmt.Errorf("contracts: record a bound upload's contract: %w", err)
	}
	if ok {
		r.log.Debug("contract upload bound", "contract", id, "object", uint64(obj))
	}
	return nil
}

// Release ends the grant that opened session once its upload is bound to
// a registered object, and returns the contract's room to the Room (when
// it is a RoomReleaser): the chain charged the object to the bucket's
// voucher, so the reservation would count it twice until the grant lapsed.
func (r *Responder) Release(session []byte) {
	if len(session) != 16 {
		return
	}
	r.mu.Lock()
	g, ok := r.grants[[16]byte(session)]
	if ok {
		r.dropGrant(g)
	}
	r.mu.Unlock()
	if rel, isRel := r.room.(RoomReleaser); ok && isRel {
		rel.Release(g.ContractID)
	}
}

// OpenGrants returns the number of store grants CONSIGN opened that have
// not lapsed: the upload sessions the provider takes now.
func (r *Responder) OpenGrants() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, now := 0, time.Now()
	for _, g := range r.grants {
		if !now.After(g.Expires) {
			n++
		}
	}
	return n
}

// Reserved returns the bytes the responder's Room holds reserved for open
// contracts, when it says (*Ledger does); 0 otherwise.
func (r *Responder) Reserved() uint64 {
	if l, ok := r.room.(interface{ Reserved() uint64 }); ok {
		return l.Reserved()
	}
	return 0
}

// Close stops answering and serving; it returns when its goroutines ended.
func (r *Responder) Close() error {
	r.h.Protocol().RemoveHandler(Protocol)
	r.cancel()
	r.wg.Wait()
	r.stopUndelivered()
	return nil
}

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

// idFree refuses an ID this provider already holds a contract under: a
// new contract may not replace it (a renewal goes through RENEW).
func (r *Responder) idFree(id ID) error {
	_, err := r.store.Get(id, r.id.Key.Account())
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: this provider already holds contract %s; a new contract needs a new ID", errMismatch, id)
}

// checkStored refuses c when the store holds another contract under its
// ID; it reports whether it holds c itself (both signing the same form).
func (r *Responder) checkStored(c *Contract) (held bool, err error) {
	old, err := r.store.Get(c.ID, r.id.Key.Account())
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(old.SigningBytes(), c.SigningBytes()) {
		return true, fmt.Errorf("%w: this provider already holds another contract under ID %s (%s differs); a new contract needs a new ID",
			errMismatch, c.ID, cmp.Or(firstDiff(old, c, true), "a field"))
	}
	return true, nil
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

// RetrieveSigningBytes is the canonical form a renter signs to RETRIEVE: the
// domain "satchel/retrieve/v1\x00", the contract ID and the provider's
// public key as byte strings, and the time as a signed 64-bit integer.
func RetrieveSigningBytes(id ID, provider chain.Account, at time.Time) []byte {
	pub, _ := provider.PublicKey()
	c := newCanon(retrieveDomain, 80)
	c.bytes(id[:])
	c.bytes(pub)
	c.i64(at.Unix())
	return c.b
}
