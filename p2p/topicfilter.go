package p2p

import (
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/satchel-net/satchel/topics"
)

// ErrUnknownTopic means a topic name is not one of Satchel's (topics.Names):
// the host neither joins it nor tracks a peer's subscription to it.
var ErrUnknownTopic = errors.New("p2p: not a Satchel topic")

// topicSet is the allow-list of the subscription filter: every gossipsub
// topic Satchel uses, 82 names.
var topicSet = func() map[string]struct{} {
	m := make(map[string]struct{})
	for _, n := range topics.Names() {
		m[n] = struct{}{}
	}
	return m
}()

// maxSubscriptionsPerRPC bounds the subscription changes one gossipsub RPC
// may carry: a peer announcing, or dropping and taking up again, every
// Satchel topic at once stays under it. An RPC over it is ignored whole.
var maxSubscriptionsPerRPC = 2 * len(topicSet)

// subscriptionFilter keeps gossipsub to Satchel's topics. Without it the
// router keeps a map entry for every topic any peer says it subscribes to,
// for as long as the peer stays connected: 2 million made-up names from
// one connection cost 624 MiB of heap.
func subscriptionFilter() pubsub.Option {
	return pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(
		pubsub.NewAllowlistSubscriptionFilter(topics.Names()...), maxSubscriptionsPerRPC))
}

// checkTopic reports whether topic is one of Satchel's, with an error that
// names it and wraps ErrUnknownTopic if not.
func checkTopic(topic string) error {
	if _, ok := topicSet[topic]; ok {
		return nil
	}
	return fmt.Errorf("%w: topic %q; want a contract topic in lower-case hex such as 0f01020303, or the audit topic %s",
		ErrUnknownTopic, truncateTopic(topic), topics.AuditTopic)
}

// truncateTopic keeps an error about a made-up topic name short.
func truncateTopic(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
