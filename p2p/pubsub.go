package p2p

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Join returns the gossipsub handle of a topic, joining it on first use. The
// handle is shared: later calls with the same name return it, and it stays
// joined until the host closes.
func (h *Host) Join(topic string) (*pubsub.Topic, error) {
	h.topicsMu.Lock()
	defer h.topicsMu.Unlock()
	if t, ok := h.topics[topic]; ok {
		return t, nil
	}
	t, err := h.ps.Join(topic)
	if err != nil {
		return nil, fmt.Errorf("p2p: join topic %q: %w", topic, err)
	}
	h.topics[topic] = t
	return t, nil
}

// Subscribe joins a topic and subscribes to it. Every message the subscription
// yields carries a verified signature of its author (msg.GetFrom()), as the
// host runs gossipsub in strict signing mode. Cancel the subscription to stop
// receiving.
func (h *Host) Subscribe(topic string, opts ...pubsub.SubOpt) (*pubsub.Subscription, error) {
	t, err := h.Join(topic)
	if err != nil {
		return nil, err
	}
	sub, err := t.Subscribe(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: subscribe to topic %q: %w", topic, err)
	}
	return sub, nil
}

// Publish signs data with the host's key and publishes it on a topic, joining
// the topic if needed. Publishing does not require a subscription; it reaches
// the peers subscribed to the topic that this host is connected to, directly
// or through the gossipsub mesh.
func (h *Host) Publish(ctx context.Context, topic string, data []byte) error {
	t, err := h.Join(topic)
	if err != nil {
		return err
	}
	if err := t.Publish(ctx, data); err != nil {
		return fmt.Errorf("p2p: publish on topic %q: %w", topic, err)
	}
	return nil
}

// TopicPeers returns the connected peers known to be subscribed to a topic.
func (h *Host) TopicPeers(topic string) []peer.ID {
	return h.ps.ListPeers(topic)
}
