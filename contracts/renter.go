package contracts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/topics"
)

// Renter is a client's side of contracts: it publishes signed proposals,
// takes the OFFER streams providers open to it, checks each offer against
// the chain and consigns with the best. It serves /satchel/contract/1.0.0
// for offers while it lives.
type Renter struct {
	h      *p2p.Host
	g      *Gossip
	key    chain.Key
	member chain.MemberID
	dir    Directory
	store  *Store
	log    *slog.Logger

	mu   sync.Mutex
	open map[ID]*collector

	share     *hostShare // serves its OFFERs beside the host's other contract parts
	role      *role
	closeOnce sync.Once
}

// NewRenter returns the renter of member (whose controller key is key) on
// h. store may be nil when the caller keeps contracts itself.
func NewRenter(h *p2p.Host, g *Gossip, key chain.Key, member chain.MemberID, dir Directory, store *Store, log *slog.Logger) *Renter {
	if log == nil {
		log = slog.Default()
	}
	r := &Renter{h: h, g: g, key: key, member: member, dir: dir, store: store,
		log: log.With("component", "contracts"), open: make(map[ID]*collector)}
	r.share, r.role = acquireShare(h), newRole(true, r.serve, r.isOpen)
	r.share.addRole(r.role)
	return r
}

// isOpen reports whether proposal id takes offers on r.
func (r *Renter) isOpen(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.open[id]
	return ok
}

// SetBound records in the renter's store that the upload under c was
// bound to data object obj (Store.SetBound); nothing when the renter keeps
// no store.
func (r *Renter) SetBound(c *Contract, obj chain.ObjectID) error {
	if r.store == nil {
		return nil
	}
	return r.store.SetBound(c.ID, c.Provider, obj)
}

// Close stops taking offers; it returns once the offers being taken were
// answered or their streams reset. Other contract parts on the host (a
// Responder, another Renter) go on serving. The renter's Publishes held
// its topics only while they published, so it leaves nothing on the host;
// close a Gossip made for it alone after it. Calls after the first do
// nothing more.
func (r *Renter) Close() error {
	r.closeOnce.Do(func() {
		r.share.removeRole(r.role)
		r.share.put()
	})
	return nil
}

// Request is what a renter asks for.
type Request struct {
	Terms
	// Duration is how long to store (rounded down to whole seconds).
	Duration time.Duration
	// TTL is how long the proposal takes offers (default DefaultTTL).
	TTL time.Duration
	// Window bounds how long offers are collected (default
	// DefaultOfferWindow); collection ends sooner once Enough offers passed
	// the chain checks.
	Window time.Duration
	// Enough is the number of valid offers after which collection stops
	// (default 2 × Redundancy).
	Enough int
}

// Offer is one provider's answer to a proposal as the renter saw it.
type Offer struct {
	// From is the peer that opened the OFFER stream.
	From peer.ID
	// Contract is the offered contract (provider-signed), nil on a refusal.
	Contract *Contract
	// After is the time from publishing to the offer's arrival.
	After time.Duration
	// Err says why the offer cannot be used: the provider's refusal, a
	// signature or chain check that failed. Nil for a usable offer.
	Err error
}

// Consigned is a contract both sides signed, with the grant that opens its
// upload.
type Consigned struct {
	Contract *Contract
	Grant    Grant
}

// Negotiation is the outcome of Negotiate.
type Negotiation struct {
	Proposal *Proposal
	// Offers are the offers kept, in arrival order: every usable one (one
	// per provider peer and bucket) and up to MaxCollected unusable ones.
	Offers []Offer
	// Contracts are the consigned contracts, best first.
	Contracts []Consigned
	// Failed lists the offers chosen whose CONSIGN failed.
	Failed []Offer
}

type collector struct {
	start  time.Time
	expect *Proposal
	mu     sync.Mutex
	offers []Offer
	// from are the peers whose offer is being checked or was usable (one
	// offer each, at most MaxCollected); unusable the most recent
	// maxOfferPeers peers whose offer was not, oldest first, so they offer
	// once too without taking a place a new peer needs; buckets the
	// buckets of the usable offers (one each).
	from     map[peer.ID]bool
	unusable map[peer.ID]bool
	order    []peer.ID
	buckets  map[chain.StorageBucketID]bool
	// checking counts offers admitted and being checked; valid and
	// errored those kept, usable or not.
	checking, valid, errored int
	enough                   int
	done                     chan struct{} // closed when enough valid offers came
}

// consignRetryAfter is how long a renter waits before it sends a CONSIGN
// again (after a BUSY refusal, or an answer that did not come).
const consignRetryAfter = 200 * time.Millisecond

// consignAttempts bounds the CONSIGNs a renter sends for one contract.
const consignAttempts = 3

// maxOfferPeers bounds the peers with unusable offers a renter remembers
// per proposal (the most recent ones), so each offers once.
const maxOfferPeers = 4 * MaxCollected

// Propose signs a proposal for req, ready to publish.
func (r *Renter) Propose(req Request) (*Proposal, error) {
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	p := &Proposal{
		ID: NewID(), Terms: req.Terms,
		Duration: req.Duration.Truncate(time.Second), Member: r.member,
		RenterPeer: r.h.ID(), Created: time.Now().Truncate(time.Second), TTL: req.TTL.Truncate(time.Second),
	}
	for _, a := range r.h.Addrs() {
		if len(p.RenterAddrs) < MaxRenterAddrs {
			p.RenterAddrs = append(p.RenterAddrs, a.Bytes())
		}
	}
	t, err := p.topicFor(p.Duration)
	if err != nil {
		return nil, err
	}
	p.Topic = t
	p.Sign(r.key)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Negotiate publishes a proposal for req on the topic its requirements
// classify as, collects offers until the window closes or enough came,
// checks each against the chain, and consigns with the best Redundancy of
// them (fastest to answer first), replacing any whose CONSIGN fails by the
// next. It returns ErrNoOffers (with the negotiation) when none could be
// consigned.
func (r *Renter) Negotiate(ctx context.Context, req Request) (*Negotiation, error) {
	p, err := r.Propose(req)
	if err != nil {
		return nil, err
	}
	window := cmp.Or(req.Window, DefaultOfferWindow)
	enough := cmp.Or(req.Enough, 2*int(req.Redundancy))
	col := &collector{start: time.Now(), expect: p, enough: enough, done: make(chan struct{})}
	r.mu.Lock()
	r.open[p.ID] = col
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.open, p.ID)
		r.mu.Unlock()
	}()

	if err := r.g.Publish(ctx, p); err != nil {
		return nil, err
	}
	if err := r.collect(ctx, p, col, window); err != nil {
		return nil, err
	}
	col.mu.Lock()
	n := &Negotiation{Proposal: p, Offers: slices.Clone(col.offers)}
	col.mu.Unlock()

	var usable []Offer
	for _, o := range n.Offers {
		if o.Err == nil {
			usable = append(usable, o)
		}
	}
	slices.SortStableFunc(usable, func(a, b Offer) int { return cmp.Compare(a.After, b.After) })
	r.consignBest(ctx, n, usable, int(req.Redundancy))
	if len(n.Contracts) == 0 {
		return n, fmt.Errorf("%w: proposal %s on topic %s: %d offers came in %v, none could be consigned%s",
			ErrNoOffers, p.ID, p.Topic, len(n.Offers), window, diskFullNote(n.Offers))
	}
	return n, nil
}

// diskFullNote says how many offers were refusals for lack of disk room:
// not a policy, but the provider's free disk less what its open uploads
// reserve, which returns as they finish or its operator frees disk.
func diskFullNote(offers []Offer) string {
	n := 0
	for _, o := range offers {
		if errors.Is(o.Err, ErrDiskFull) {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of them refused: no free disk room at the provider, its free disk less what its open uploads reserve; it may take the proposal later)", n)
}

// collect waits for col's offers until enough came, the window closes or
// ctx ends. While fewer than enough came it publishes p again, after
// republishFirst and then at doubling gaps, until republishQuiet before the
// window closes. A proposal can miss providers: the publisher knows only
// the subscribers it has heard of yet (a fresh host, often one), and a
// provider whose check of it failed for its own reasons (a chain read that
// timed out) drops it as seen. Each copy is a new gossip message; a
// provider that answered already does not answer again.
func (r *Renter) collect(ctx context.Context, p *Proposal, col *collector, window time.Duration) error {
	timer := time.NewTimer(window)
	defer timer.Stop()
	gap := republishFirst
	again := time.NewTimer(gap)
	defer again.Stop()
	for {
		select {
		case <-col.done:
			return nil
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-again.C:
			if time.Since(col.start) > window-republishQuiet {
				continue // no later copy could be answered in time
			}
			if err := r.g.Publish(ctx, p); err != nil {
				r.log.Debug("proposal not published again", "proposal", p.ID, "err", err)
			}
			gap *= 2
			again.Reset(gap)
		}
	}
}

// republishFirst is when a renter first publishes a proposal again while
// offers are short; republishQuiet is how long before its window closes it
// stops (an offer needs that long to be checked and arrive).
const (
	republishFirst = 500 * time.Millisecond
	republishQuiet = 500 * time.Millisecond
)

// consignBest consigns with up to want of the ranked offers, in rounds: each
// round consigns in parallel with as many as are still missing.
func (r *Renter) consignBest(ctx context.Context, n *Negotiation, ranked []Offer, want int) {
	for len(n.Contracts) < want && len(ranked) > 0 {
		k := min(want-len(n.Contracts), len(ranked))
		round := ranked[:k]
		ranked = ranked[k:]
		res := make([]Consigned, k)
		errs := make([]error, k)
		var wg sync.WaitGroup
		for i, o := range round {
			wg.Go(func() { res[i], errs[i] = r.Consign(ctx, o.Contract) })
		}
		wg.Wait()
		for i := range round {
			if errs[i] != nil {
				o := round[i]
				o.Err = errs[i]
				n.Failed = append(n.Failed, o)
				continue
			}
			n.Contracts = append(n.Contracts, res[i])
		}
	}
}

// Consign countersigns an offered contract and sends it to its provider;
// the provider answers with the grant that opens the upload. The complete
// contract is kept in the renter's store.
//
// A CONSIGN refused BUSY, or whose answer did not come (the stream was
// reset or timed out after it was sent), is sent again consignRetryAfter
// later, consignAttempts times in all: the provider answers the very
// contract it consigned already with the same grant.
func (r *Renter) Consign(ctx context.Context, offered *Contract) (Consigned, error) {
	c := *offered
	c.SignAsRenter(r.key)
	req := &pb.Request{Body: &pb.Request_Consign{Consign: &pb.Consign{Contract: c.ToPB()}}}
	resp, err := r.sendConsign(ctx, c.ProviderPeer, req)
	if err != nil {
		return Consigned{}, err
	}
	if rf := resp.GetRefusal(); rf != nil {
		return Consigned{}, fmt.Errorf("consign %s with %s: %w", c.ID, c.ProviderPeer, refusalError(rf))
	}
	sg := resp.GetStoreGrant()
	if sg == nil || len(sg.Session) != 16 || string(sg.ContractId) != string(c.ID[:]) {
		return Consigned{}, malformed("provider %s answered CONSIGN without a store grant for %s", c.ProviderPeer, c.ID)
	}
	if err := c.Verify(); err != nil {
		return Consigned{}, err
	}
	if r.store != nil {
		if err := r.store.Put(&c); err != nil {
			return Consigned{}, err
		}
	}
	g := Grant{ContractID: c.ID, Bag: chain.BagID(sg.BagId), MaxBytes: sg.MaxBytes, Expires: time.Unix(sg.ExpiresUnix, 0)}
	copy(g.Session[:], sg.Session)
	return Consigned{Contract: &c, Grant: g}, nil
}

// sendConsign sends a CONSIGN until it is answered other than BUSY, or
// consignAttempts were sent. Another request of the contract may hold it
// (the renter's own CONSIGN whose answer was lost, still running on a slow
// provider, which makes the retry wait for it up to StreamTimeout; an
// older provider answers BUSY at once); a CONSIGN whose answer was lost
// may have been taken, and its grant is answered again.
func (r *Renter) sendConsign(ctx context.Context, to peer.ID, req *pb.Request) (*pb.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := exchange(ctx, r.h, to, req)
		again := errors.Is(err, errNoAnswer) || err == nil && resp.GetRefusal().GetCode() == pb.Code_CODE_BUSY
		if !again || attempt == consignAttempts {
			return resp, err
		}
		r.log.Debug("CONSIGN sent again", "provider", to, "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(consignRetryAfter):
		}
	}
}

// Renew asks the provider of c to extend it to end. Only the end (and the
// start, which stays) changes; the provider re-signs and both keep the
// renewed contract.
func (r *Renter) Renew(ctx context.Context, c *Contract, end time.Time) (*Contract, error) {
	n := *c
	n.End = end.Truncate(time.Second)
	n.SignAsRenter(r.key)
	return r.sendRenew(ctx, &n)
}

// sendRenew sends a renter-signed renewal as is (tests send forbidden ones).
func (r *Renter) sendRenew(ctx context.Context, n *Contract) (*Contract, error) {
	resp, err := exchange(ctx, r.h, n.ProviderPeer, &pb.Request{Body: &pb.Request_Renew{Renew: &pb.Renew{Contract: n.ToPB()}}})
	if err != nil {
		return nil, err
	}
	if rf := resp.GetRefusal(); rf != nil {
		return nil, fmt.Errorf("renew %s with %s: %w", n.ID, n.ProviderPeer, refusalError(rf))
	}
	rn := resp.GetRenewed()
	if rn == nil {
		return nil, malformed("provider %s answered RENEW with %T", n.ProviderPeer, resp.Body)
	}
	n.ProviderSignature = rn.ProviderSignature
	if err := n.Verify(); err != nil {
		return nil, err
	}
	if r.store != nil {
		if err := r.store.Put(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Retrieve asks the provider of c for a read grant: a confirmation that
// the provider holds c, live, for this renter. Reads themselves need no
// token; the grant's token is informational.
func (r *Renter) Retrieve(ctx context.Context, c *Contract) (token []byte, expires time.Time, err error) {
	at := time.Now()
	req := &pb.Retrieve{ContractId: c.ID[:], AtUnix: at.Unix(), Signature: r.key.Sign(RetrieveSigningBytes(c.ID, c.Provider, at))}
	resp, err := exchange(ctx, r.h, c.ProviderPeer, &pb.Request{Body: &pb.Request_Retrieve{Retrieve: req}})
	if err != nil {
		return nil, time.Time{}, err
	}
	if rf := resp.GetRefusal(); rf != nil {
		return nil, time.Time{}, fmt.Errorf("retrieve %s from %s: %w", c.ID, c.ProviderPeer, refusalError(rf))
	}
	g := resp.GetReadGrant()
	if g == nil || len(g.Token) != 16 {
		return nil, time.Time{}, malformed("provider %s answered RETRIEVE without a read grant", c.ProviderPeer)
	}
	return g.Token, time.Unix(g.ExpiresUnix, 0), nil
}

// Mirror asks the provider of the consigned contract c to copy its object
// from sources, providers that hold it.
func (r *Renter) Mirror(ctx context.Context, c *Contract, sources []peer.ID) error {
	m := &pb.Mirror{Contract: c.ToPB()}
	for _, s := range sources {
		m.Sources = append(m.Sources, []byte(s))
	}
	resp, err := exchange(ctx, r.h, c.ProviderPeer, &pb.Request{Body: &pb.Request_Mirror{Mirror: m}})
	if err != nil {
		return err
	}
	if rf := resp.GetRefusal(); rf != nil {
		return fmt.Errorf("mirror %s to %s: %w", c.ID, c.ProviderPeer, refusalError(rf))
	}
	if resp.GetMirrorAccepted() == nil {
		return malformed("provider %s answered MIRROR with %T", c.ProviderPeer, resp.Body)
	}
	return nil
}

// serve answers an OFFER the host's contract handler passed on.
func (r *Renter) serve(ctx context.Context, s network.Stream, req *pb.Request) error {
	o := req.GetOffer()
	var resp *pb.Response
	if o == nil {
		resp = &pb.Response{Body: &pb.Response_Refusal{Refusal: refusal(malformed("a renter takes only OFFER"))}}
	} else if err := r.take(ctx, s.Conn().RemotePeer(), o); err != nil {
		resp = &pb.Response{Body: &pb.Response_Refusal{Refusal: refusal(err)}}
	} else {
		resp = &pb.Response{Body: &pb.Response_OfferAck{OfferAck: &pb.OfferAck{}}}
	}
	return r.h.Protocol().WriteMsg(s, resp)
}

// take records an offer for an open proposal, after checking it names the
// proposal's terms, is signed by its provider and the provider is
// authorised on chain.
func (r *Renter) take(ctx context.Context, from peer.ID, o *pb.Offer) error {
	pid, err := idFrom(o.ProposalId, "proposal id")
	if err != nil {
		return err
	}
	r.mu.Lock()
	col := r.open[pid]
	r.mu.Unlock()
	if col == nil {
		return fmt.Errorf("%w: proposal %s is not open", ErrNotFound, pid)
	}
	if err := col.admit(from); err != nil {
		return err
	}
	off := Offer{From: from, After: time.Since(col.start)}
	if rf := o.GetRefusal(); rf != nil {
		off.Err = refusalError(rf)
	} else {
		off.Contract, off.Err = r.checkOffer(ctx, col.expect, from, o.GetContract())
	}
	col.add(off)
	if off.Err != nil && !errors.Is(off.Err, ErrRefused) {
		r.log.Debug("offer not usable", "proposal", pid, "from", from, "err", off.Err)
	}
	return nil
}

func (r *Renter) checkOffer(ctx context.Context, p *Proposal, from peer.ID, m *pb.Contract) (*Contract, error) {
	c, err := ContractFromPB(m)
	if err != nil {
		return nil, err
	}
	if c.ID != p.ID || c.Topic != p.Topic || c.Terms != p.Terms || c.Renter != p.Renter || c.Member != p.Member {
		return nil, fmt.Errorf("%w: offer does not carry the proposal's terms", errMismatch)
	}
	if d := c.End.Sub(c.Start); d != p.Duration {
		return nil, fmt.Errorf("%w: offer runs %v, the proposal %v", errMismatch, d, p.Duration)
	}
	if c.ProviderPeer != from {
		return nil, fmt.Errorf("%w: offer names peer %s but came from %s", errMismatch, c.ProviderPeer, from)
	}
	if err := c.VerifyProvider(); err != nil {
		return nil, err
	}
	if err := CheckProvider(ctx, r.dir, c); err != nil {
		return nil, err
	}
	return c, nil
}

// admit takes an offer from peer from for checking, before any signature
// or chain read: one offer per peer, and no more in flight than can still
// be kept as usable. Offers found unusable give their slot back, and their
// peers are remembered apart (the most recent maxOfferPeers), so any
// number of throwaway peers sending junk never keeps a new peer's offer
// out while fewer than MaxCollected are usable or being checked.
func (c *collector) admit(from peer.ID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.from[from] || c.unusable[from]:
		return malformed("peer %s already offered on proposal %s; one offer per provider", from, c.expect.ID)
	case c.valid+c.checking >= MaxCollected:
		return fmt.Errorf("%w: proposal %s has its %d offers", ErrBusy, c.expect.ID, MaxCollected)
	}
	if c.from == nil {
		c.from, c.unusable, c.buckets = map[peer.ID]bool{}, map[peer.ID]bool{}, map[chain.StorageBucketID]bool{}
	}
	c.from[from] = true
	c.checking++
	return nil
}

// add keeps an admitted offer once checked: a usable one (one per bucket)
// counts towards enough; an unusable one is kept for the record while
// fewer than MaxCollected are, and takes no usable offer's place.
func (c *collector) add(o Offer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checking--
	if o.Err == nil && c.buckets[o.Contract.Bucket] {
		o.Err = fmt.Errorf("%w: bucket %d offered already", errMismatch, o.Contract.Bucket)
	}
	if o.Err != nil {
		c.forget(o.From)
		if c.errored < MaxCollected {
			c.errored++
			c.offers = append(c.offers, o)
		}
		return
	}
	c.buckets[o.Contract.Bucket] = true
	c.offers = append(c.offers, o)
	c.valid++
	if c.valid == c.enough {
		close(c.done)
	}
}

// forget moves a peer whose offer was unusable from the admitted peers to
// the most recent unusable ones, dropping the oldest beyond maxOfferPeers.
func (c *collector) forget(p peer.ID) {
	delete(c.from, p)
	if len(c.order) >= maxOfferPeers {
		delete(c.unusable, c.order[0])
		c.order = c.order[1:]
	}
	c.unusable[p] = true
	c.order = append(c.order, p)
}

// Topic returns the contract topic q's proposal is published on: its size
// and duration classified, its availability and speed classes.
func (q Request) Topic() (topics.Topic, error) {
	return q.Terms.topicFor(q.Duration.Truncate(time.Second))
}
