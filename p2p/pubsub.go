package p2p

import (
	"context"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Join returns the gossipsub handle of a topic, joining it on first use. The
// handle is shared: later calls with the same name return it, and it stays
// joined until the host closes. The topic must be one of topics.Names; the
// error for any other wraps ErrUnknownTopic.
func (h *Host) Join(topic string) (*pubsub.Topic, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
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

// topicPeersRecheck is how often WaitTopicPeers counts again between peer
// events.
const topicPeersRecheck = 250 * time.Millisecond

// WaitTopicPeers waits until the host knows at least want connected peers
// subscribed to topic (TopicPeers), or ctx ends. It wakes on the topic's
// peer events and also counts again every quarter second: TopicPeers
// counts only peers with a live pubsub stream, and a subscriber whose
// stream opened after its subscription arrived raises no event of its own.
func (h *Host) WaitTopicPeers(ctx context.Context, topic string, want int) error {
	t, err := h.Join(topic)
	if err != nil {
		return err
	}
	events, err := t.EventHandler()
	if err != nil {
		return fmt.Errorf("p2p: watch topic %q: %w", topic, err)
	}
	defer events.Cancel()
	// The handler exists before the first count, so no join is missed.
	for {
		n := len(h.TopicPeers(topic))
		if n >= want {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, topicPeersRecheck)
		_, err := events.NextPeerEvent(wctx)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("p2p: %d peers known on topic %q, want %d: %w", n, topic, want, ctx.Err())
		}
		if err != nil && wctx.Err() == nil {
			return fmt.Errorf("p2p: watch topic %q: %w", topic, err)
		}
	}
}

// TopicPeers returns the connected peers known to be subscribed to a topic.
func (h *Host) TopicPeers(topic string) []peer.ID {
	return h.ps.ListPeers(topic)
}
