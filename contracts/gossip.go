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

// Gossip is a host's side of the contract topics: it registers the one topic
// validator per topic (pubsub allows only one), subscribes, and publishes
// proposals. Renter and Responder share a host's Gossip. It is safe for
// concurrent use.
//
// A topic's validator stays registered while anything holds the topic:
// a subscription until the release Subscribe returned with it (a Responder
// releases its subscriptions when it closes), a Publish until Close. Then
// it is unregistered, so another Gossip on the same host (a responder
// started again) can register its own. A release lets go of its own hold
// only, however often it is called.
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

	mu        sync.Mutex
	refs      map[string]int  // holds of each topic whose validator is registered
	published map[string]bool // topics Publish holds until Close

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
		log:  log.With("component", "contracts"),
		refs: make(map[string]int), published: make(map[string]bool),
	}
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

// join takes a hold of topic t, registering its validator and topic
// score when it is the first, and returns the joined topic. Every join
// that succeeds is matched by one leaveLocked.
func (g *Gossip) join(t topics.Topic) (*pubsub.Topic, error) {
	if err := t.Validate(); err != nil || t.Prefix != topics.PrefixContract {
		return nil, malformed("topic %s: not a contract topic", t)
	}
	name := t.String()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refs[name] == 0 {
		err := g.h.PubSub().RegisterTopicValidator(name, g.validator(t),
			pubsub.WithValidatorTimeout(ValidatorTimeout),
			pubsub.WithValidatorConcurrency(ValidatorConcurrency))
		if err != nil {
			return nil, fmt.Errorf("contracts: register validator of topic %s: %w", name, err)
		}
	}
	pt, err := g.h.Join(name)
	if err != nil {
		if g.refs[name] == 0 {
			_ = g.h.PubSub().UnregisterTopicValidator(name)
		}
		return nil, err
	}
	g.refs[name]++
	// Without peer scoring on the router this fails; scoring is optional.
	_ = pt.SetScoreParams(TopicScoreParams())
	return pt, nil
}

// leaveLocked lets go of one hold of topic name, unregistering its
// validator with the last. Call with g.mu.
func (g *Gossip) leaveLocked(name string) {
	if g.refs[name] == 0 {
		return
	}
	g.refs[name]--
	if g.refs[name] > 0 {
		return
	}
	delete(g.refs, name)
	// It fails only once the host's pubsub stopped, which dropped it.
	if err := g.h.PubSub().UnregisterTopicValidator(name); err != nil {
		g.log.Debug("unregister topic validator", "topic", name, "err", err)
	}
}

// leave lets go of one hold of topic name.
func (g *Gossip) leave(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leaveLocked(name)
}

// Close lets go of the topics Publish holds; those a subscription still
// holds keep their validator until its release. The Gossip may be used
// again.
func (g *Gossip) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name := range g.published {
		delete(g.published, name)
		g.leaveLocked(name)
	}
	return nil
}

// Subscribe subscribes to contract topic t. Every message the subscription
// yields passed the validator; ProposalOf returns its proposal. The
// subscription holds t's validator until release, which cancels the
// subscription and lets go of its hold: call it when done (more calls do
// nothing), rather than sub.Cancel alone, which keeps the hold.
func (g *Gossip) Subscribe(t topics.Topic) (sub *pubsub.Subscription, release func(), err error) {
	pt, err := g.join(t)
	if err != nil {
		return nil, nil, err
	}
	sub, err = pt.Subscribe()
	if err != nil {
		g.leave(t.String())
		return nil, nil, fmt.Errorf("contracts: subscribe to topic %s: %w", t, err)
	}
	var once sync.Once
	return sub, func() {
		once.Do(func() {
			// Cancel first: the validator goes with the last hold, and
			// must not while this subscription could be handed a message.
			sub.Cancel()
			g.leave(t.String())
		})
	}, nil
}

// publishTopic joins p's topic for Publish, which holds it until Close.
func (g *Gossip) publishTopic(t topics.Topic) (*pubsub.Topic, error) {
	pt, err := g.join(t)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.published[t.String()] {
		g.leaveLocked(t.String()) // held already: one hold is enough
	} else {
		g.published[t.String()] = true
	}
	return pt, nil
}

// Publish publishes a signed proposal on its topic. It checks the
// proposal first as every receiver will — its fields, and that its renter
// key controls its member on chain — so that a proposal no one would take
// fails with the reason (ErrMalformed, ErrExpired, ErrNotMember...) rather
// than the local validator's bare refusal.
func (g *Gossip) Publish(ctx context.Context, p *Proposal) error {
	pt, err := g.publishTopic(p.Topic)
	if err != nil {
		return err
	}
	if err := p.Check(g.now()); err != nil {
		return fmt.Errorf("contracts: proposal %s: %w", p.ID, err)
	}
	if err := g.mc.check(ctx, p.Renter, p.Member); err != nil {
		return fmt.Errorf("contracts: proposal %s: %w; sign with the key of the member's controller account, or name the member it controls", p.ID, err)
	}
	b, err := proto.Marshal(p.ToPB())
	if err != nil {
		return fmt.Errorf("contracts: marshal proposal: %w", err)
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

func (g *Gossip) validator(t topics.Topic) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
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
