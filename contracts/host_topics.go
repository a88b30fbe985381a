package contracts

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/topics"
)

// A host's topic holds: the one validator of each contract topic, kept
// while any Gossip on the host holds the topic.

// join takes a hold of topic t for g (a subscription's when sub, else a
// Publish's), registering the topic's validator with the host's first
// hold, and returns the joined topic. Every join that succeeds is matched
// by one leave. The pubsub calls run under vmu only: the validators and
// the protocol handler, which take mu, do not wait for them.
func (s *hostShare) join(t topics.Topic, g *Gossip, sub bool) (*pubsub.Topic, error) {
	name := t.String()
	s.vmu.Lock()
	defer s.vmu.Unlock()
	s.mu.Lock()
	first := len(s.holds[name]) == 0
	s.mu.Unlock()
	if first {
		err := s.h.PubSub().RegisterTopicValidator(name, s.validator(t),
			pubsub.WithValidatorTimeout(ValidatorTimeout),
			pubsub.WithValidatorConcurrency(ValidatorConcurrency))
		if err != nil {
			return nil, fmt.Errorf("contracts: register validator of topic %s: %w", name, err)
		}
	}
	pt, err := s.h.Join(name)
	if err != nil {
		if first {
			_ = s.h.PubSub().UnregisterTopicValidator(name)
		}
		return nil, err
	}
	s.mu.Lock()
	s.holds[name] = append(s.holds[name], hold{g: g, sub: sub})
	s.mu.Unlock()
	return pt, nil
}

// leave lets go of g's latest hold of topic name of the kind sub says,
// unregistering the topic's validator with the host's last hold.
func (s *hostShare) leave(name string, g *Gossip, sub bool) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	s.mu.Lock()
	hs := s.holds[name]
	i := len(hs) - 1
	for i >= 0 && hs[i] != (hold{g: g, sub: sub}) {
		i--
	}
	if i < 0 {
		s.mu.Unlock()
		return
	}
	hs = append(hs[:i], hs[i+1:]...)
	if len(hs) > 0 {
		s.holds[name] = hs
		s.mu.Unlock()
		return
	}
	delete(s.holds, name)
	s.mu.Unlock()
	// It fails only once the host's pubsub stopped, which dropped it.
	if err := s.h.PubSub().UnregisterTopicValidator(name); err != nil {
		g.log.Debug("unregister topic validator", "topic", name, "err", err)
	}
}

// judge returns the Gossip topic name's validator judges with: that of
// the oldest subscription (a Responder's) whose Gossip can judge, else of
// the oldest Publish in flight whose Gossip can, else any holder's (which
// ignores every proposal); nil when nothing holds the topic. Call with
// s.mu.
func (s *hostShare) judge(name string) *Gossip {
	var pub, other *Gossip
	for _, h := range s.holds[name] {
		switch {
		case !h.g.canJudge():
			other = cmp.Or(other, h.g)
		case h.sub:
			return h.g
		default:
			pub = cmp.Or(pub, h.g)
		}
	}
	return cmp.Or(pub, other)
}

// validator is topic t's validator: it judges with the Gossip judge picks,
// and ignores a message that comes as the last hold goes. A panic while
// judging (a bug a peer's message reached; pubsub does not recover its
// validators) rejects the message rather than take the node down.
func (s *hostShare) validator(t topics.Topic) pubsub.ValidatorEx {
	name := t.String()
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) (res pubsub.ValidationResult) {
		s.mu.Lock()
		g := s.judge(name)
		s.mu.Unlock()
		if g == nil {
			return pubsub.ValidationIgnore
		}
		defer func() {
			if v := recover(); v != nil {
				g.rejectPanic(t, from, v, debug.Stack())
				res = pubsub.ValidationReject
			}
		}()
		return g.validate(ctx, t, from, m)
	}
}

// rejectPanic counts and logs a proposal whose judging panicked with v.
func (g *Gossip) rejectPanic(t topics.Topic, from peer.ID, v any, stack []byte) {
	g.rejected.Add(1)
	g.metrics.validation("reject")
	g.log.Error("proposal rejected: judging it panicked", "topic", t, "from", from,
		"panic", fmt.Sprint(v), slog.String("stack", string(stack)))
}
