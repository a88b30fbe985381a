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
// chain. Nor does it check the result's time or whether it was heard
// before: a validator opens messages with a ResultFilter.
func OpenMessage(msg *pubsub.Message) (*pb.AuditResult, error) {
	r, _, err := openMessage(msg)
	return r, err
}

func openMessage(msg *pubsub.Message) (*pb.AuditResult, []byte, error) {
	r, body, err := openResult(msg.GetData())
	if err != nil {
		return nil, nil, err
	}
	if string(r.Auditor) != string(msg.GetFrom()) {
		return nil, nil, fmt.Errorf("%w: result published by a peer other than its auditor", ErrInvalid)
	}
	return r, body, nil
}
