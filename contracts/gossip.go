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
// live subscription (a Responder's), else of its oldest Publish in flight
// (its Directory, clock, counts and metrics). A Gossip without a Directory
// cannot judge: it is chosen only when no other holds the topic, and then
// ignores every proposal. It is safe for concurrent use.
//
// A topic's validator stays registered while anything on the host holds
// the topic: a subscription until the release Subscribe returned with it
// (a Responder releases its subscriptions when it closes), a Publish while
// it publishes. A release lets go of its own hold only, however often it
// is called. So a Renter's Gossip holds nothing once its Publishes
// returned, and Close only stops it publishing.
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

	mu     sync.Mutex
	closed bool
	busy   sync.WaitGroup // Publishes and Subscribes in flight; Add under mu while open

	accepted, rejected, ignored atomic.Int64
	metrics                     *Metrics
}

// NewGossip returns the contract-topic gossip of h, checking renters
// against dir. With dir nil the Gossip cannot judge proposals (its
// validator ignores them all) nor publish them (Publish fails): it serves
// tests of the protocol alone.
func NewGossip(h *p2p.Host, dir Directory, log *slog.Logger, opts ...GossipOption) *Gossip {
	if log == nil {
		log = slog.Default()
	}
	g := &Gossip{
		h: h, dir: dir, mc: newMemberCache(dir), now: time.Now,
		log: log.With("component", "contracts"),
	}
	g.done, g.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(g)
	}
	return g
}

// canJudge reports whether g can check a proposal's renter on chain.
func (g *Gossip) canJudge() bool { return g.dir != nil }

// GossipStats counts the validator's outcomes.
type GossipStats struct {
	Accepted, Rejected, Ignored int64
}

// Stats returns the validator's outcomes so far.
func (g *Gossip) Stats() GossipStats {
	return GossipStats{g.accepted.Load(), g.rejected.Load(), g.ignored.Load()}
}

// join takes a hold of topic t on the host (a subscription's when sub,
// else a Publish's), registering its validator when it is the host's
// first, and returns the joined topic and the share to leave it on. Every
// join that succeeds is matched by one leave of the share.
func (g *Gossip) join(t topics.Topic, sub bool) (*pubsub.Topic, *hostShare, error) {
	if err := t.Validate(); err != nil || t.Prefix != topics.PrefixContract {
		return nil, nil, malformed("topic %s: not a contract topic", t)
	}
	s := acquireShare(g.h)
	pt, err := s.join(t, g, sub)
	if err != nil {
		s.put()
		return nil, nil, err
	}
	// Without peer scoring on the router this fails; scoring is optional.
	_ = pt.SetScoreParams(TopicScoreParams())
	return pt, s, nil
}

// leave lets go of a hold of topic name that join took on s.
func (g *Gossip) leave(s *hostShare, name string, sub bool) {
	s.leave(name, g, sub)
	s.put()
}

// Close ends publishing and subscribing: a Publish or Subscribe after or
// while it runs returns ErrClosed and publishes or holds nothing, unless
// it was done before Close returns, which it does once none is in flight.
// The subscriptions taken before keep their topics' validators until
// their release. Calls after the first do nothing more.
func (g *Gossip) Close() error {
	g.mu.Lock()
	g.closed = true
	g.cancel()
	g.mu.Unlock()
	g.busy.Wait()
	return nil
}

// errClosed is the error of a Gossip used after Close.
func errClosed(what string) error {
	return fmt.Errorf("%w: %s after the gossip closed", ErrClosed, what)
}

// enter counts a Publish or Subscribe in flight, unless g is closed.
func (g *Gossip) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.busy.Add(1)
	return true
}

// Subscribe subscribes to contract topic t. Every message the subscription
// yields passed the validator; ProposalOf returns its proposal. The
// subscription holds t's validator until release, which cancels the
// subscription and lets go of its hold: call it when done (more calls do
// nothing), rather than sub.Cancel alone, which keeps the hold. After
// Close, or when Close comes before it subscribed, it returns ErrClosed
// and holds nothing.
func (g *Gossip) Subscribe(t topics.Topic) (sub *pubsub.Subscription, release func(), err error) {
	what := "subscribe to topic " + t.String()
	if !g.enter() {
		return nil, nil, errClosed(what)
	}
	defer g.busy.Done()
	pt, s, err := g.join(t, true)
	if err != nil {
		return nil, nil, err
	}
	sub, err = pt.Subscribe()
	if err != nil {
		g.leave(s, t.String(), true)
		return nil, nil, fmt.Errorf("contracts: subscribe to topic %s: %w", t, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			// Cancel first: the validator goes with the last hold, and
			// must not while this subscription could be handed a message.
			sub.Cancel()
			g.leave(s, t.String(), true)
		})
	}
	if g.done.Err() != nil { // Close came meanwhile: it is waiting for us
		release()
		return nil, nil, errClosed(what)
	}
	return sub, release, nil
}

// Publish publishes a signed proposal on its topic, holding the topic
// while it does. It checks the proposal first as every receiver will —
// its fields, and that its renter key controls its member on chain — so
// that a proposal no one would take fails with the reason (ErrMalformed,
// ErrExpired, ErrNotMember...) rather than the local validator's bare
// refusal. After Close, or when Close comes before it publishes, it
// returns ErrClosed and publishes nothing; a proposal found at fault
// first fails with its fault all the same.
func (g *Gossip) Publish(ctx context.Context, p *Proposal) error {
	what := "publish proposal " + p.ID.String()
	if !g.enter() {
		return errClosed(what)
	}
	defer g.busy.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(g.done, cancel) // a chain read in flight gives up at Close
	defer stop()
	err := g.publish(ctx, p)
	if err != nil && g.done.Err() != nil && !isProposalFault(err) {
		return errClosed(what)
	}
	return err
}

// isProposalFault reports whether err says what is wrong with the
// proposal itself, which Publish reports even when Close came meanwhile.
func isProposalFault(err error) bool {
	return isSenderFault(err) || errors.Is(err, ErrExpired) || errors.Is(err, ErrClockSkew)
}

// publish is Publish while it counts as in flight.
func (g *Gossip) publish(ctx context.Context, p *Proposal) error {
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
	pt, s, err := g.join(p.Topic, false)
	if err != nil {
		return err
	}
	// The local validator judges the message within pt.Publish, and
	// nothing on a topic the host does not subscribe to reaches it after.
	defer g.leave(s, p.Topic.String(), false)
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
