package store

import "fmt"

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
