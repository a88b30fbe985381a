package store

import (
	"errors"
	"fmt"

	"github.com/satchel-net/satchel/internal/fsutil"
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

	// ErrNoSpace means the provider refused or failed a step because the
	// file system holding its block store is full (the reply's no_space):
	// its operator must free space; push to another provider. A
	// *RefusedError with NoSpace set matches it with errors.Is. On the
	// provider's side, a Blocks error matching it (or the system's "no
	// space left on device" or disk quota error) is answered with
	// no_space set.
	ErrNoSpace = errors.New("store: provider disk full")
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
	// NoSpace says the provider's disk is full (the reply's no_space):
	// errors.Is(err, ErrNoSpace). A provider that predates the field says
	// so only in Reason.
	NoSpace bool
	// Retry, on a FAILED bind, says the provider asked to be bound again:
	// the failure was transient (it could not record the object or its
	// storage contract), and the same BIND may succeed. RetrySaid says the
	// provider said either way (the reply's retry field); a provider that
	// predates the field never does, and only the reply's other fields
	// are left to decide by.
	Retry, RetrySaid bool
}

// Error says whether the provider refused or failed, and why.
func (e *RefusedError) Error() string {
	verb := "refused"
	if e.Status == pb.Status_STATUS_FAILED {
		verb = "failed"
	}
	return fmt.Sprintf("provider %s: %s", verb, e.Reason)
}

// Is reports whether target is ErrProviderBusy and the refusal says busy,
// or ErrNoSpace and it says the disk is full.
func (e *RefusedError) Is(target error) bool {
	return target == ErrProviderBusy && e.Busy || target == ErrNoSpace && e.NoSpace
}

// refusal is the *RefusedError of a REFUSED or FAILED reply. Only a
// REFUSED reply is busy; either may say the disk is full.
func refusal(r *pb.StoreReply) error {
	return &RefusedError{Status: r.Status, Reason: r.Reason,
		Busy: r.Busy && r.Status == pb.Status_STATUS_REFUSED, NoSpace: r.NoSpace,
		Retry: r.GetRetry(), RetrySaid: r.Retry != nil}
}

// noSpace reports whether a provider-side error says its disk is full:
// it matches ErrNoSpace, or is the system's error for a full disk.
func noSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || fsutil.NoSpace(err)
}
