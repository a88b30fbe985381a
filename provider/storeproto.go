package provider

import (
	"errors"
	"fmt"

	"github.com/satchel-net/satchel/wire"
)

// The store protocol, /satchel/store/1.0.0 (docs/PROTOCOL.md): an uploader
// opens one stream and moves many chunks over it, pipelined. Every frame it
// sends is a StoreRequest whose id names one exchange; the provider answers
// with StoreReply frames carrying the same id, in any order across ids. A
// chunk's exchange goes
//
//	request  → AGREED | ALREADY_STORED (straight to sign) | REFUSED
//	segments → SEGMENTS_OK | ALREADY_STORED | FAILED
//	data...  → DATA_RECEIVED (stored durably) | FAILED
//	sign     → SIGNED with a receipt | FAILED
//
// and a BIND exchange ties the pushed chunks to their object: → BOUND |
// REFUSED | FAILED. The limits are in limits.go.
//
// The protocol lives in the store_* files:
//   - storeproto.go: this overview, the protocol's errors, PushStep;
//   - store_caller.go: the uploader's side, StoreStream (Push, Bind);
//   - store_handler.go: the provider's side, StoreHandler, and its
//     per-stream loop;
//   - store_handler_chunk.go: the handler's steps of a chunk exchange;
//   - store_handler_bind.go: the handler's BIND;
//   - store_frames.go: frames encoded and decoded by hand, so chunk bytes
//     are never copied into or out of a marshalled message.

// Errors of the store protocol's caller side.
var (
	// ErrStreamClosed means the store stream was closed or failed; pushes
	// still in flight on it fail with an error wrapping it. Open a new one.
	ErrStreamClosed = errors.New("provider: store stream closed")

	// ErrProtocol means the provider answered out of the protocol's order.
	ErrProtocol = errors.New("provider: store protocol violation")
)

// RefusedError is a provider's refusal (REFUSED) or failure (FAILED) of one
// step of a chunk exchange or of a bind, with the reason it gave. Test for it
// with errors.As; the uploader may try another provider.
type RefusedError struct {
	// Status is the provider's answer: wire.Status_STATUS_REFUSED when it
	// will not store the chunk (not authorised, not in the object's DAG, no
	// room), wire.Status_STATUS_FAILED when a step failed (bytes that do not
	// match, a missing chunk at bind).
	Status wire.Status
	// Reason is the provider's human-readable cause.
	Reason string
}

// Error says whether the provider refused or failed, and why.
func (e *RefusedError) Error() string {
	verb := "refused"
	if e.Status == wire.Status_STATUS_FAILED {
		verb = "failed"
	}
	return fmt.Sprintf("provider %s: %s", verb, e.Reason)
}

// refusal is the *RefusedError of a REFUSED or FAILED reply.
func refusal(r *wire.StoreReply) error {
	return &RefusedError{Status: r.Status, Reason: r.Reason}
}

// PushStep is one step of a chunk exchange as the uploader sees it,
// reported to ChunkPush.OnStep. A fresh chunk goes PushRequested,
// PushAgreed, PushSegmentsSent, PushDataSent, PushSignSent,
// PushSegmentsAccepted, PushDataReceived, PushSigned: once the provider
// agreed, the segment map, data and SIGN go out in one write, and the
// steps of that write are reported together after it. A chunk the provider
// already holds goes PushRequested, PushAlreadyStored, PushSignSent,
// PushSigned, or gets PushAlreadyStored in place of PushSegmentsAccepted
// and PushDataReceived when the provider got it from another upload
// meanwhile. A refusal or failure ends the steps; Push returns the error.
type PushStep int

// Steps of a chunk exchange, named after the frame sent or the answer
// received.
const (
	// PushRequested: the chunk request (STORE_CHUNK_REQUEST) was sent.
	PushRequested PushStep = iota + 1
	// PushAgreed: the provider answered AGREED.
	PushAgreed
	// PushAlreadyStored: the provider answered ALREADY_STORED; it holds
	// the chunk durably and no data is (or was) needed.
	PushAlreadyStored
	// PushSegmentsSent: the segment map was sent.
	PushSegmentsSent
	// PushDataSent: every data frame was sent.
	PushDataSent
	// PushSignSent: SIGN was sent.
	PushSignSent
	// PushSegmentsAccepted: the provider answered SEGMENTS_OK.
	PushSegmentsAccepted
	// PushDataReceived: the provider answered DATA_RECEIVED; it holds the
	// chunk durably.
	PushDataReceived
	// PushSigned: the provider answered SIGNED and its receipt verified;
	// Push returns it.
	PushSigned
)

var pushStepNames = [...]string{"", "requested", "agreed", "already stored", "segments sent",
	"data sent", "sign sent", "segments accepted", "data received", "signed"}

// String returns the step's name.
func (s PushStep) String() string {
	if s <= 0 || int(s) >= len(pushStepNames) {
		return fmt.Sprintf("PushStep(%d)", int(s))
	}
	return pushStepNames[s]
}
