package contracts

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
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
	Mirror(ctx context.Context, c *Contract, sources []peer.ID) error
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
	pending   map[ID]pendingOffer // offered, awaiting CONSIGN
	changing  map[ID]struct{}     // contracts a CONSIGN, MIRROR or RENEW is checking and writing
	mirroring map[ID]struct{}     // contracts whose object is being copied
	grants    map[[16]byte]Grant  // store sessions opened by CONSIGN, until they lapse

	stats ResponderStats
}

// ResponderStats counts what a responder did with proposals.
type ResponderStats struct {
	Proposals, Offers, NotAssigned, NoRoom, OfferFailed, Consigned int64
	// Busy counts proposals left unanswered because their renter already
	// had MaxPendingPerRenter offers pending, or the provider
	// MaxPendingOffers.
	Busy int64
	// Mirrors counts the copies MIRROR requests started.
	Mirrors int64
}

// NewResponder starts a provider's responder on h: it serves the contract
// protocol at once and subscribes to the WithTopics topics.
func NewResponder(h *p2p.Host, g *Gossip, id Identity, auth Authority, room Room, store *Store, opts ...ResponderOption) (*Responder, error) {
	if id.Key.IsZero() {
		return nil, errors.New("contracts: responder needs the worker's role key")
	}
	r := &Responder{h: h, g: g, id: id, auth: auth, room: room, store: store,
		log: slog.Default(), pending: make(map[ID]pendingOffer), changing: make(map[ID]struct{}), mirroring: make(map[ID]struct{}), grants: make(map[[16]byte]Grant)}
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
	delete(r.grants, [16]byte(session))
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

// Close stops answering and serving; it returns when its goroutines ended.
func (r *Responder) Close() error {
	r.h.Protocol().RemoveHandler(Protocol)
	r.cancel()
	r.wg.Wait()
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
		r.count(func(s *ResponderStats) { s.Proposals++ })
		// One goroutine per proposal, bounded by the pending-offer cap.
		if err := r.reservePending(p); err != nil {
			r.count(func(s *ResponderStats) { s.Busy++ })
			r.metrics.answer("busy")
			r.log.Debug("proposal not answered", "proposal", p.ID, "renter", p.Renter, "err", err)
			continue
		}
		r.wg.Go(func() { r.answer(p) })
	}
}

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
// start unbounded work, nor one renter take every slot: it fails with
// ErrBusy when p's renter holds MaxPendingPerRenter slots or the provider
// MaxPendingOffers, or when the ID is taken.
func (r *Responder) reservePending(p *Proposal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	mine := 0
	for k, po := range r.pending { // drop offers nobody consigned
		if now.After(po.expires) {
			delete(r.pending, k)
		} else if po.renter == p.Renter {
			mine++
		}
	}
	_, taken := r.pending[p.ID]
	_, changing := r.changing[p.ID]
	switch {
	case taken || changing:
		return fmt.Errorf("%w: proposal %s already has a pending offer", ErrBusy, p.ID)
	case mine >= MaxPendingPerRenter:
		return fmt.Errorf("%w: renter %s has %d offers pending, the most one renter may", ErrBusy, p.Renter, mine)
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
// provider's bucket; otherwise it stays silent.
func (r *Responder) answer(p *Proposal) {
	ctx, cancel := context.WithDeadline(r.ctx, p.Expires())
	defer cancel()
	if err := r.auth.CheckAssigned(ctx, p.Bag); err != nil {
		r.dropPending(p.ID)
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
		r.count(func(s *ResponderStats) { s.NoRoom++ })
		r.metrics.answer("no_room")
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

// serve is the handler of /satchel/contract/1.0.0 on a provider.
func (r *Responder) serve(ctx context.Context, s network.Stream) error {
	var req pb.Request
	if err := r.h.Protocol().ReadMsg(s, &req, MaxFrame); err != nil {
		return err
	}
	var resp *pb.Response
	var err error
	kind := "other"
	switch b := req.Body.(type) {
	case *pb.Request_Consign:
		kind = "consign"
		resp, err = r.consign(ctx, b.Consign.GetContract(), s.Conn().RemotePeer())
	case *pb.Request_Renew:
		kind = "renew"
		resp, err = r.renew(ctx, b.Renew.GetContract())
	case *pb.Request_Retrieve:
		kind = "retrieve"
		resp, err = r.retrieve(b.Retrieve)
	case *pb.Request_Mirror:
		kind = "mirror"
		resp, err = r.mirrorReq(ctx, b.Mirror, s.Conn().RemotePeer())
	default:
		err = malformed("a provider takes CONSIGN, RETRIEVE, MIRROR or RENEW, not %T", req.Body)
	}
	if err != nil {
		r.log.Debug("contract request refused", "remote", s.Conn().RemotePeer(), "kind", kind, "err", err)
		rf := refusal(err)
		r.metrics.request(kind, rf.Code.String())
		resp = &pb.Response{Body: &pb.Response_Refusal{Refusal: rf}}
	} else {
		r.metrics.request(kind, "ok")
	}
	return r.h.Protocol().WriteMsg(s, resp)
}

// consign takes the renter's countersignature of a pending offer, sent by
// peer from (the one peer its grant lets drop the session). The offer is
// taken from the pending ones before anything slow is checked, so
// concurrent CONSIGNs of one offer open one grant; it is put back when the
// CONSIGN fails, so a bad CONSIGN by anyone who read the proposal's ID
// does not cancel the renter's offer.
func (r *Responder) consign(ctx context.Context, m *pb.Contract, from peer.ID) (*pb.Response, error) {
	c, err := ContractFromPB(m)
	if err != nil {
		return nil, err
	}
	release, err := r.claim(c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	po, err := r.takePending(c.ID)
	if err != nil {
		return nil, err
	}
	g, err := r.consignOffered(ctx, po.c, c)
	if err != nil {
		r.restorePending(c.ID, po)
		return nil, err
	}
	g.Renter = from
	r.mu.Lock()
	now := time.Now()
	for k, og := range r.grants {
		if now.After(og.Expires) {
			delete(r.grants, k)
		}
	}
	r.grants[g.Session] = g
	r.mu.Unlock()
	r.count(func(s *ResponderStats) { s.Consigned++ })
	r.log.Info("contract consigned", "contract", c.ID, "bag", c.Bag, "size", c.Size, "renter", c.Renter, "end", c.End.UTC())
	return &pb.Response{Body: &pb.Response_StoreGrant{StoreGrant: &pb.StoreGrant{
		ContractId: c.ID[:], Session: g.Session[:], BagId: string(g.Bag),
		MaxBytes: g.MaxBytes, ExpiresUnix: g.Expires.Unix(),
	}}}, nil
}

// consignOffered checks that c is the offered contract countersigned by a
// member, reserves its room and stores it.
func (r *Responder) consignOffered(ctx context.Context, offered, c *Contract) (Grant, error) {
	if f := firstDiff(offered, c, true); f != "" {
		return Grant{}, fmt.Errorf("%w: field %s differs from the offer", errMismatch, f)
	}
	if err := c.Verify(); err != nil {
		return Grant{}, err
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return Grant{}, err
	}
	if _, err := r.checkStored(c); err != nil {
		return Grant{}, err
	}
	g, err := r.room.Reserve(ctx, c)
	if err != nil {
		return Grant{}, err
	}
	if err := r.store.Put(c); err != nil {
		if rel, ok := r.room.(RoomReleaser); ok {
			rel.Release(c.ID)
		}
		return Grant{}, err
	}
	return g, nil
}

// claim marks contract id as changed by a request (CONSIGN, MIRROR, RENEW)
// until release is called, so no two requests check and write one ID's
// contract at once, and no proposal under it is offered meanwhile; a second
// request is refused with ErrBusy.
func (r *Responder) claim(id ID) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.changing[id]; ok {
		return nil, fmt.Errorf("%w: another request for contract %s is in flight", ErrBusy, id)
	}
	r.changing[id] = struct{}{}
	return func() {
		r.mu.Lock()
		delete(r.changing, id)
		r.mu.Unlock()
	}, nil
}

// takePending removes the pending offer id and returns it.
func (r *Responder) takePending(id ID) (pendingOffer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	po := r.pending[id]
	if po.c == nil {
		return po, fmt.Errorf("%w: no pending offer for contract %s (expired, consigned, or never offered)", ErrNotFound, id)
	}
	delete(r.pending, id)
	if time.Now().After(po.expires) {
		return po, fmt.Errorf("%w: the offer for contract %s lapsed at %v", ErrExpired, id, po.expires.UTC())
	}
	return po, nil
}

// restorePending puts back an offer a failed CONSIGN took, unless it lapsed.
func (r *Responder) restorePending(id ID, po pendingOffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[id]; !ok && time.Now().Before(po.expires) {
		r.pending[id] = po
	}
}

// renew accepts a renter-signed contract that changes only what RENEW may
// change, re-signs it and stores it.
func (r *Responder) renew(ctx context.Context, m *pb.Contract) (*pb.Response, error) {
	c, err := ContractFromPB(m)
	if err != nil {
		return nil, err
	}
	release, err := r.claim(c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	old, err := r.store.Get(c.ID, r.id.Key.Account())
	if err != nil {
		return nil, err
	}
	if err := renewable(old, c, time.Now()); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// Renter and member are those of the stored contract, so only its
	// renter can sign a renewal.
	if err := verify(old.Renter, c.SigningBytes(), c.RenterSignature, "renter"); err != nil {
		return nil, err
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return nil, err
	}
	c.SignAsProvider(r.id.Key)
	if err := r.store.Put(c); err != nil {
		return nil, err
	}
	r.log.Info("contract renewed", "contract", c.ID, "end", c.End.UTC())
	return &pb.Response{Body: &pb.Response_Renewed{Renewed: &pb.Renewed{ProviderSignature: c.ProviderSignature}}}, nil
}

// renewable checks that c renews old: every field but the dates the same,
// the renter and member too; the end no earlier than old's and in the
// future; the start no earlier than old's, nor later than now.
func renewable(old, c *Contract, now time.Time) error {
	if f := firstDiff(old, c, false); f != "" {
		return fmt.Errorf("%w: RENEW changed %s; only start_unix, end_unix and the renter's signature may change", ErrForbiddenChange, f)
	}
	switch {
	case c.Renter != old.Renter:
		return fmt.Errorf("%w: RENEW changed renter; only the contract's renter %s may renew it", ErrForbiddenChange, old.Renter)
	case c.Member != old.Member:
		return fmt.Errorf("%w: RENEW changed renter_member from %d to %d", ErrForbiddenChange, old.Member, c.Member)
	case c.End.Before(old.End):
		return fmt.Errorf("%w: renewed end %v is before the contract's end %v; RENEW only extends", ErrForbiddenChange, c.End.UTC(), old.End.UTC())
	case c.Start.Before(old.Start) || c.Start.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("%w: renewed start %v is before the contract's start %v or in the future", ErrForbiddenChange, c.Start.UTC(), old.Start.UTC())
	case !c.End.After(now):
		return fmt.Errorf("%w: renewed end %v is in the past", ErrExpired, c.End.UTC())
	}
	return nil
}

// retrieve gives the renter of a stored contract a read grant.
func (r *Responder) retrieve(m *pb.Retrieve) (*pb.Response, error) {
	id, err := idFrom(m.GetContractId(), "contract id")
	if err != nil {
		return nil, err
	}
	c, err := r.store.Get(id, r.id.Key.Account())
	if err != nil {
		return nil, err
	}
	at := time.Unix(m.GetAtUnix(), 0)
	if d := time.Since(at); d > MaxClockSkew || d < -MaxClockSkew {
		return nil, malformed("retrieve at %v is more than %v from this node's clock", at.UTC(), MaxClockSkew)
	}
	if err := verify(c.Renter, RetrieveSigningBytes(id, c.Provider, at), m.GetSignature(), "renter"); err != nil {
		return nil, err
	}
	if !c.Live(time.Now()) {
		return nil, fmt.Errorf("%w: contract %s ended %v", ErrExpired, id, c.End.UTC())
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	return &pb.Response{Body: &pb.Response_ReadGrant{ReadGrant: &pb.ReadGrant{
		ContractId: id[:], Token: tok[:], ExpiresUnix: time.Now().Add(GrantTTL).Unix(),
	}}}, nil
}

// mirrorReq takes a contract the renter consigned with this provider for an
// object other providers hold, and starts copying it from them: one copy
// per contract at a time, at most MaxMirrors in all, each for at most
// MirrorTimeout. A MIRROR of the contract while its copy runs is answered
// as accepted and starts nothing.
func (r *Responder) mirrorReq(ctx context.Context, m *pb.Mirror, from peer.ID) (*pb.Response, error) {
	if r.mirror == nil {
		return nil, fmt.Errorf("%w: this provider does not take MIRROR requests", ErrRefused)
	}
	c, sources, err := r.mirrorRequest(m)
	if err != nil {
		return nil, err
	}
	accepted := &pb.Response{Body: &pb.Response_MirrorAccepted{MirrorAccepted: &pb.MirrorAccepted{ContractId: c.ID[:]}}}
	release, err := r.claim(c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	held, err := r.checkStored(c)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	_, running := r.mirroring[c.ID]
	r.mu.Unlock()
	if held && running {
		return accepted, nil
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return nil, err
	}
	if err := r.auth.CheckAssigned(ctx, c.Bag); err != nil {
		return nil, err
	}
	done, err := r.startMirror(c.ID)
	if err != nil {
		return nil, err
	}
	if _, err := r.room.Reserve(ctx, c); err != nil {
		done()
		return nil, err
	}
	if err := r.store.Put(c); err != nil {
		done()
		return nil, err
	}
	r.count(func(s *ResponderStats) { s.Mirrors++ })
	r.wg.Go(func() {
		defer done()
		ctx, cancel := context.WithTimeout(r.ctx, MirrorTimeout)
		defer cancel()
		if err := r.mirror.Mirror(ctx, c, sources); err != nil {
			r.log.Warn("mirror failed", "contract", c.ID, "from", from, "err", err)
		}
	})
	return accepted, nil
}

// mirrorRequest reads a MIRROR: a complete, live contract with this
// provider for a registered object, and its sources.
func (r *Responder) mirrorRequest(m *pb.Mirror) (*Contract, []peer.ID, error) {
	if n := len(m.GetSources()); n == 0 || n > MaxMirrorSources {
		return nil, nil, malformed("%d mirror sources: want 1 to %d", n, MaxMirrorSources)
	}
	c, err := ContractFromPB(m.GetContract())
	if err != nil {
		return nil, nil, err
	}
	if c.Provider != r.id.Key.Account() || c.ProviderPeer != r.h.ID() {
		return nil, nil, fmt.Errorf("%w: contract %s names another provider", errMismatch, c.ID)
	}
	if c.Object == 0 {
		return nil, nil, malformed("contract %s names no registered object to mirror", c.ID)
	}
	if !c.Live(time.Now()) {
		return nil, nil, fmt.Errorf("%w: contract %s runs from %v to %v", ErrExpired, c.ID, c.Start.UTC(), c.End.UTC())
	}
	if err := c.Verify(); err != nil {
		return nil, nil, err
	}
	var sources []peer.ID
	for _, b := range m.GetSources() {
		p, err := peer.IDFromBytes(b)
		if err != nil {
			return nil, nil, malformed("mirror source: %v", err)
		}
		sources = append(sources, p)
	}
	return c, sources, nil
}

// startMirror holds one of the MaxMirrors copy slots for contract id until
// done is called.
func (r *Responder) startMirror(id ID) (done func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.mirroring[id]; ok {
		return nil, fmt.Errorf("%w: contract %s is being mirrored", ErrBusy, id)
	}
	if len(r.mirroring) >= MaxMirrors {
		return nil, fmt.Errorf("%w: %d mirrors running, the most this provider runs at once; ask again later", ErrBusy, len(r.mirroring))
	}
	r.mirroring[id] = struct{}{}
	return func() {
		r.mu.Lock()
		delete(r.mirroring, id)
		r.mu.Unlock()
	}, nil
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
