package contracts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/topics"
)

// Gossip is a contract part's side of the contract topics: it holds the
// topics' validators, subscribes, and publishes proposals. A Renter and a
// Responder may share a Gossip or each have its own on one host: pubsub
// allows one validator per topic per host, so the host's first hold of a
// topic registers it, and it judges with the Gossip of the topic's oldest
// live hold (its Directory, clock, counts and metrics). It is safe for
// concurrent use.
//
// A topic's validator stays registered while anything on the host holds
// the topic: a subscription until the release Subscribe returned with it
// (a Responder releases its subscriptions when it closes), a Publish until
// Close. A release lets go of its own hold only, however often it is
// called.
//
// The validator rejects, before a message is forwarded or delivered, a
// proposal that is oversized, does not decode, is not signed by its renter,
// whose renter peer is not the message's author, whose topic is not the one
// its requirements classify as or not the topic it came on, or whose renter
// is not the controller of the member it names on chain. An expired
// proposal, or one the chain could not be asked about in time, is ignored
// (not forwarded, not penalised): a slow chain is not the sender's fault.
type Gossip struct {
	h   *p2p.Host
	dir Directory
	log *slog.Logger
	mc  *memberCache
	now func() time.Time

	// done ends at Close: the Publishes in flight give up.
	done   context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	closed     bool
	publishing sync.WaitGroup        // Publishes in flight; Add under mu while open
	published  map[string]*hostShare // topics Publish holds until Close

	accepted, rejected, ignored atomic.Int64
	metrics                     *Metrics
}

// NewGossip returns the contract-topic gossip of h, checking renters
// against dir.
func NewGossip(h *p2p.Host, dir Directory, log *slog.Logger, opts ...GossipOption) *Gossip {
	if log == nil {
		log = slog.Default()
	}
	g := &Gossip{
		h: h, dir: dir, mc: newMemberCache(dir), now: time.Now,
		log:       log.With("component", "contracts"),
		published: make(map[string]*hostShare),
	}
	g.done, g.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(g)
	}
	return g
}

// GossipStats counts the validator's outcomes.
type GossipStats struct {
	Accepted, Rejected, Ignored int64
}

// Stats returns the validator's outcomes so far.
func (g *Gossip) Stats() GossipStats {
	return GossipStats{g.accepted.Load(), g.rejected.Load(), g.ignored.Load()}
}

// join takes a hold of topic t on the host, registering its validator
// when it is the host's first, and returns the joined topic and the share
// to leave it on. Every join that succeeds is matched by one leave of the
// share.
func (g *Gossip) join(t topics.Topic) (*pubsub.Topic, *hostShare, error) {
	if err := t.Validate(); err != nil || t.Prefix != topics.PrefixContract {
		return nil, nil, malformed("topic %s: not a contract topic", t)
	}
	s := acquireShare(g.h)
	pt, err := s.join(t, g)
	if err != nil {
		s.put()
		return nil, nil, err
	}
	// Without peer scoring on the router this fails; scoring is optional.
	_ = pt.SetScoreParams(TopicScoreParams())
	return pt, s, nil
}

// leave lets go of a hold of topic name that join took on s.
func (g *Gossip) leave(s *hostShare, name string) {
	s.leave(name, g)
	s.put()
}

// Close ends publishing: a Publish after or while it runs returns
// ErrClosed and publishes nothing, unless it was publishing already, and
// Close returns once no Publish is. It lets go of the topics Publish
// holds; those a subscription still holds keep their validator until its
// release. Subscribe fails after Close too. Calls after the first do
// nothing more.
func (g *Gossip) Close() error {
	g.mu.Lock()
	g.closed = true
	g.cancel()
	g.mu.Unlock()
	g.publishing.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, s := range g.published {
		delete(g.published, name)
		g.leave(s, name)
	}
	return nil
}

// errClosed is the error of a Gossip used after Close.
func errClosed(what string) error {
	return fmt.Errorf("%w: %s after the gossip closed", ErrClosed, what)
}

// Subscribe subscribes to contract topic t. Every message the subscription
// yields passed the validator; ProposalOf returns its proposal. The
// subscription holds t's validator until release, which cancels the
// subscription and lets go of its hold: call it when done (more calls do
// nothing), rather than sub.Cancel alone, which keeps the hold.
func (g *Gossip) Subscribe(t topics.Topic) (sub *pubsub.Subscription, release func(), err error) {
	if g.done.Err() != nil {
		return nil, nil, errClosed("subscribe to topic " + t.String())
	}
	pt, s, err := g.join(t)
	if err != nil {
		return nil, nil, err
	}
	sub, err = pt.Subscribe()
	if err != nil {
		g.leave(s, t.String())
		return nil, nil, fmt.Errorf("contracts: subscribe to topic %s: %w", t, err)
	}
	var once sync.Once
	return sub, func() {
		once.Do(func() {
			// Cancel first: the validator goes with the last hold, and
			// must not while this subscription could be handed a message.
			sub.Cancel()
			g.leave(s, t.String())
		})
	}, nil
}

// enterPublish counts a Publish in flight, unless g is closed.
func (g *Gossip) enterPublish() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.publishing.Add(1)
	return true
}

// publishTopic joins p's topic for Publish, which holds it until Close.
// Call between enterPublish and its Done.
func (g *Gossip) publishTopic(t topics.Topic) (*pubsub.Topic, error) {
	pt, s, err := g.join(t)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.published[t.String()] != nil {
		g.leave(s, t.String()) // held already: one hold is enough
	} else {
		g.published[t.String()] = s
	}
	return pt, nil
}

// Publish publishes a signed proposal on its topic. It checks the
// proposal first as every receiver will — its fields, and that its renter
// key controls its member on chain — so that a proposal no one would take
// fails with the reason (ErrMalformed, ErrExpired, ErrNotMember...) rather
// than the local validator's bare refusal. After Close, or when Close
// comes before it publishes, it returns ErrClosed and publishes nothing.
func (g *Gossip) Publish(ctx context.Context, p *Proposal) error {
	if !g.enterPublish() {
		return errClosed("publish proposal " + p.ID.String())
	}
	defer g.publishing.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(g.done, cancel) // a chain read in flight gives up at Close
	defer stop()
	err := g.publish(ctx, p)
	if err != nil && g.done.Err() != nil {
		return errClosed("publish proposal " + p.ID.String())
	}
	return err
}

// publish is Publish while it counts as in flight.
func (g *Gossip) publish(ctx context.Context, p *Proposal) error {
	if err := p.Check(g.now()); err != nil {
		return fmt.Errorf("contracts: proposal %s: %w", p.ID, err)
	}
	pt, err := g.publishTopic(p.Topic)
	if err != nil {
		return err
	}
	if err := g.mc.check(ctx, p.Renter, p.Member); err != nil {
		return fmt.Errorf("contracts: proposal %s: %w; sign with the key of the member's controller account, or name the member it controls", p.ID, err)
	}
	b, err := proto.Marshal(p.ToPB())
	if err != nil {
		return fmt.Errorf("contracts: marshal proposal: %w", err)
	}
	if g.done.Err() != nil {
		return g.done.Err() // closed during the checks: nothing goes out
	}
	if err := pt.Publish(ctx, b); err != nil {
		return fmt.Errorf("contracts: publish proposal %s on topic %s: %w", p.ID, p.Topic, err)
	}
	return nil
}

// ProposalOf returns the proposal a validated message carries.
func ProposalOf(m *pubsub.Message) (*Proposal, bool) {
	p, ok := m.ValidatorData.(*Proposal)
	return p, ok
}

// validate is topic t's validator's decision on m, with g's checks,
// counts and metrics.
func (g *Gossip) validate(ctx context.Context, t topics.Topic, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	p, err := g.check(ctx, t, m)
	switch {
	case err == nil:
		m.ValidatorData = p
		g.accepted.Add(1)
		g.metrics.validation("accept")
		return pubsub.ValidationAccept
	case errors.Is(err, ErrExpired) || !isSenderFault(err):
		g.ignored.Add(1)
		g.metrics.validation("ignore")
		g.log.Debug("proposal ignored", "topic", t, "from", from, "err", err)
		return pubsub.ValidationIgnore
	}
	g.rejected.Add(1)
	g.metrics.validation("reject")
	g.log.Debug("proposal rejected", "topic", t, "from", from, "err", err)
	return pubsub.ValidationReject
}

// isSenderFault reports whether err is the publisher's doing.
func isSenderFault(err error) bool {
	for _, e := range []error{ErrMalformed, ErrSignature, ErrTopicMismatch, ErrNotMember} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// check is the validator's decision for a message on topic t as an
// error: nil for a proposal that would be accepted.
func (g *Gossip) check(ctx context.Context, t topics.Topic, m *pubsub.Message) (*Proposal, error) {
	if len(m.Data) > MaxProposalSize {
		return nil, malformed("proposal of %d bytes, limit %d", len(m.Data), MaxProposalSize)
	}
	var w pb.Proposal
	if err := proto.Unmarshal(m.Data, &w); err != nil {
		return nil, malformed("proposal does not decode: %v", err)
	}
	p, err := ProposalFromPB(&w)
	if err != nil {
		return nil, err
	}
	if p.Topic != t {
		return nil, fmt.Errorf("%w: proposal for topic %s published on %s", ErrTopicMismatch, p.Topic, t)
	}
	if author := m.GetFrom(); author != p.RenterPeer {
		return nil, malformed("renter peer %s is not the message's author %s", p.RenterPeer, author)
	}
	if err := p.Check(g.now()); err != nil {
		return nil, err
	}
	if err := g.mc.check(ctx, p.Renter, p.Member); err != nil {
		return nil, err
	}
	return p, nil
}

// ScoreOptions returns the gossipsub options a node on contract topics runs
// with (pass them to p2p.WithPubSubOptions): peer scoring whose only
// penalty that matters is for invalid messages, thresholds that stop
// gossiping with, then publishing to, then hearing from a peer as its score
// sinks, and a validation queue large enough that bursts are not dropped.
//
// Choices, for low-traffic topics: the mesh message delivery penalty (P3)
// and its failure penalty (P3b) are off, since a quiet topic would penalise
// honest mesh peers for silence; the IP colocation penalty is off, since
// devnets and tests run every node on one address; first deliveries (P2)
// and time in mesh (P1) earn a little. The validation throttle is raised
// from gossipsub's default and each topic's validator has its own bound
// (ValidatorConcurrency), so that a flood on one topic does not make the
// router drop another topic's messages silently.
func ScoreOptions() []pubsub.Option {
	params := &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		Topics:               map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:        50,
		AppSpecificScore:     func(peer.ID) float64 { return 0 },
		AppSpecificWeight:    1,
		DecayInterval:        time.Second,
		DecayToZero:          0.01,
		RetainScore:          10 * time.Minute,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -10,
		PublishThreshold:            -50,
		GraylistThreshold:           -80,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 2,
	}
	return []pubsub.Option{
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithValidateThrottle(4096),
	}
}

// TopicScoreParams returns the score parameters of one contract topic (see
// ScoreOptions). One rejected proposal costs its sender 100 × 1 points
// (squared count × weight), which crosses the gossip threshold at once; the
// count decays by 10% a second.
func TopicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  100,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    0.9,
		FirstMessageDeliveriesCap:      10,
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  0.9,
	}
}
