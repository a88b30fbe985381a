package client

import (
	"github.com/satchel-net/satchel/protocol/store"
)

// A storage link (seed 004: StorageLink) as the store protocol's steps move
// it.

// linkSteps moves one storage link through the LinkStates as its store
// exchange reports its steps (store.ChunkPush.OnStep). Push calls the
// hook on the goroutine running the link, so it needs no lock.
//
// The caller side pipelines a chunk's segment map, data and SIGN in one
// write, so SIGN is out before DATA_RECEIVED is back: the link asks for the
// signature once the provider holds the data. ALREADY_STORED, after the
// request or the segment map, takes the link straight to data received.
// Links only move forward; the final state (signed or failed) is set by the
// pusher from Push's result and the receipt check.
type linkSteps struct {
	tr            *tracker
	state         LinkState
	signSent      bool
	alreadyStored bool   // the provider held the chunk: no byte was sent
	onData        func() // called when the chunk's bytes go out
}

// step is the store.ChunkPush.OnStep hook.
func (l *linkSteps) step(s store.PushStep) {
	switch s {
	case store.PushAgreed:
		l.advance(LinkAgreed)
	case store.PushSegmentsSent:
		l.advance(LinkSendingSegmentMap)
	case store.PushDataSent:
		l.advance(LinkSendingData)
		if l.onData != nil {
			l.onData()
		}
	case store.PushDataReceived, store.PushAlreadyStored:
		// Held already, answered before the data went out: no byte sent.
		l.alreadyStored = s == store.PushAlreadyStored && l.state < LinkSendingData
		l.advance(LinkDataReceived)
		if l.signSent {
			l.advance(LinkAskingForSignature)
		}
	case store.PushSignSent:
		l.signSent = true
		if l.state == LinkDataReceived {
			l.advance(LinkAskingForSignature)
		}
	}
}

// advance moves the link to a later, non-final state.
func (l *linkSteps) advance(to LinkState) {
	if to > l.state && l.state < LinkSigned {
		l.move(to)
	}
}

// move moves the link to state to.
func (l *linkSteps) move(to LinkState) {
	if to == l.state {
		return
	}
	l.tr.link(l.state, to)
	l.state = to
}
