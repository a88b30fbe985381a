package audit

import (
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/topics"
)

// Topic is the gossipsub topic audit results are published on (publication
// prefix 0x0a alone, hex "0a"; see topics.AuditTopic).
const Topic = topics.AuditTopic

// OpenMessage opens a message of Topic: it must be a SignedResult whose
// signature verifies with the key of the auditor it names, and that auditor
// must be the message's author. It cannot tell whether the auditor may
// audit the bag: a storage provider adds a check of the bag's operators on
// chain.
func OpenMessage(msg *pubsub.Message) (*pb.AuditResult, error) {
	r, err := OpenResult(msg.GetData())
	if err != nil {
		return nil, err
	}
	if string(r.Auditor) != string(msg.GetFrom()) {
		return nil, fmt.Errorf("%w: result published by a peer other than its auditor", ErrInvalid)
	}
	return r, nil
}
