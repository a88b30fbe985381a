package store

import (
	"errors"
	"fmt"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Errors of the store protocol's caller side.
var (
	// ErrStreamClosed means the store stream was closed or failed; pushes
	// still in flight on it fail with an error wrapping it. Open a new one.
	// It is p2p.ErrStreamClosed.
	ErrStreamClosed = p2p.ErrStreamClosed

	// ErrProtocol means the provider answered out of the protocol's order.
	// It is p2p.ErrProtocol.
	ErrProtocol = p2p.ErrProtocol

	// ErrProviderBusy means the provider refused a request because its
	// memory budget for all peers together is spent, not this uploader's
	// own share: push to another provider (or to this one later). A
	// *RefusedError with Busy set matches it with errors.Is. A refusal for
	// the uploader's own budget does not: it should keep fewer requests in
	// flight.
	ErrProviderBusy = errors.New("store: provider busy")
)

// RefusedError is a provider's refusal (REFUSED) or failure (FAILED) of one
// step of a chunk exchange or of a bind, with the reason it gave. Test for it
// with errors.As; the uploader may try another provider.
type RefusedError struct {
	// Status is the provider's answer: pb.Status_STATUS_REFUSED when it
	// will not store the chunk (not authorised, not in the object's DAG, no
	// room), pb.Status_STATUS_FAILED when a step failed (bytes that do not
	// match, a missing chunk at bind).
	Status pb.Status
	// Reason is the provider's human-readable cause.
	Reason string
	// Busy says the provider refused because it is busy with other peers
	// (its shared memory budget is spent): errors.Is(err, ErrProviderBusy).
	Busy bool
}

// Error says whether the provider refused or failed, and why.
func (e *RefusedError) Error() string {
	verb := "refused"
	if e.Status == pb.Status_STATUS_FAILED {
		verb = "failed"
	}
	return fmt.Sprintf("provider %s: %s", verb, e.Reason)
}

// Is reports whether target is ErrProviderBusy and the refusal says busy.
func (e *RefusedError) Is(target error) bool {
	return target == ErrProviderBusy && e.Busy
}

// refusal is the *RefusedError of a REFUSED or FAILED reply. Only a
// REFUSED reply is busy.
func refusal(r *pb.StoreReply) error {
	return &RefusedError{Status: r.Status, Reason: r.Reason, Busy: r.Busy && r.Status == pb.Status_STATUS_REFUSED}
}
