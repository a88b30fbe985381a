package contracts

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/topics"
)

// A host's topic holds: the one validator of each contract topic, kept
// while any Gossip on the host holds the topic.

// join takes a hold of topic t for g, registering the topic's validator
// with the host's first hold, and returns the joined topic. Every join
// that succeeds is matched by one leave.
func (s *hostShare) join(t topics.Topic, g *Gossip) (*pubsub.Topic, error) {
	name := t.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	first := len(s.holds[name]) == 0
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
	s.holds[name] = append(s.holds[name], g)
	return pt, nil
}

// leave lets go of g's latest hold of topic name, unregistering the
// topic's validator with the host's last hold.
func (s *hostShare) leave(name string, g *Gossip) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := s.holds[name]
	i := len(hs) - 1
	for i >= 0 && hs[i] != g {
		i--
	}
	if i < 0 {
		return
	}
	hs = append(hs[:i], hs[i+1:]...)
	if len(hs) > 0 {
		s.holds[name] = hs
		return
	}
	delete(s.holds, name)
	// It fails only once the host's pubsub stopped, which dropped it.
	if err := s.h.PubSub().UnregisterTopicValidator(name); err != nil {
		g.log.Debug("unregister topic validator", "topic", name, "err", err)
	}
}

// validator is topic t's validator: it judges with the Gossip of the
// topic's oldest live hold, and ignores a message that comes as the last
// hold goes.
func (s *hostShare) validator(t topics.Topic) pubsub.ValidatorEx {
	name := t.String()
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		s.mu.Lock()
		var g *Gossip
		if hs := s.holds[name]; len(hs) > 0 {
			g = hs[0]
		}
		s.mu.Unlock()
		if g == nil {
			return pubsub.ValidationIgnore
		}
		return g.validate(ctx, t, from, m)
	}
}
