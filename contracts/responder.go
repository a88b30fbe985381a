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

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
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
	release []func() // of the topics subscribed, called at Close
	share   *hostShare
	role    *role // serves its requests on the host

	closeOnce sync.Once

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
	r.metrics.watchRoom(room)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, t := range r.topics {
		sub, release, err := g.Subscribe(t)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.release = append(r.release, release)
		r.wg.Go(func() { r.listen(sub) })
	}
	r.wg.Go(r.pruneLoop)
	r.share, r.role = acquireShare(h), newRole(false, r.serve, r.owns)
	r.share.addRole(r.role)
	r.log.Info("contract topics subscribed", "topics", r.topics)
	return r, nil
}

// owns reports whether the offer of contract id is pending on r or was
// consigned with a live grant: a CONSIGN of it, or its retry, is r's.
func (r *Responder) owns(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, pending := r.pending[id]
	_, consigned := r.consigned[id]
	return pending || consigned
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

// Close stops answering and serving; it returns when its goroutines ended.
// It releases its subscriptions, whose topics' validators go with the
// Gossip's last hold, so a responder started again on the host registers
// its own. Calls after the first, or at once with it, do nothing more.
func (r *Responder) Close() error {
	r.closeOnce.Do(func() {
		if r.role != nil {
			r.share.removeRole(r.role)
			r.share.put()
		}
		r.cancel()
		r.wg.Wait() // every listener returned
		for _, release := range r.release {
			release()
		}
		r.stopUndelivered()
	})
	return nil
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
