package audit

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/topics"
)

// Topic is the gossipsub topic audit results are published on (publication
// prefix 0x0a alone, hex "0a"; see topics.AuditTopic).
const Topic = topics.AuditTopic

// Validator is the gossipsub validator of Topic: a message passes only if
// it is a SignedResult whose signature verifies with the key of the
// auditor it names, and that auditor is the message's author. Register it
// with pubsub.RegisterTopicValidator before joining the topic. It cannot
// tell whether the auditor may audit the bag: a storage provider wraps it
// with a check of the bag's operators on chain.
func Validator(_ context.Context, _ peer.ID, msg *pubsub.Message) bool {
	r, err := OpenResult(msg.GetData())
	if err != nil {
		return false
	}
	return string(r.Auditor) == string(msg.GetFrom())
}
