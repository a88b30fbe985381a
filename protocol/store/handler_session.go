package store

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The store handler's rule for streamed upload sessions (object ID 0): they
// are stored only under a grant the node's storage contracts opened, when
// the Authorizer can say so (SessionAuthorizer); a chunk the node already
// holds joins a session only by being sent again.

// SessionAuthorizer is an Authorizer that decides streamed upload sessions
// by their session ID: the provider node answers from the grants its
// consigned storage contracts opened (the session of a grant, its bag, the
// bytes it reserved and when it lapses). When the handler's Authorizer
// implements it, AuthorizeUploadSession is asked in place of
// AuthorizeSession.
type SessionAuthorizer interface {
	// AuthorizeUploadSession returns nil when session (the 16 bytes of the
	// chunk request) may hold bytes in total for bag, and until, the
	// latest the session's unbound chunks may be kept: the end of the
	// grant that reserved their room (the zero time for no such bound).
	// A chunk request asking a later expiry is given until instead (its
	// receipt says so), so the chunks of a session never bound end with
	// their grant, and the room a grant reserved is never outlived by the
	// bytes it let in. The provider node slides the grant with each chunk
	// it authorizes (until is then one grant TTL from now): the session's
	// expiry, the latest its chunks were given, moves with it, so an
	// upload keeps its session as long as its chunks keep coming, its own
	// and those a pipeline hop forwards, which are authorized here alike.
	// stored is the part of bytes the block store holds in the session
	// now (read with bytes, under the session's lock: the rest are chunks
	// agreed to and not stored yet, this one's included), so the
	// Authorizer need not read the store again.
	// Its error's text is the refusal reason the uploader sees.
	AuthorizeUploadSession(ctx context.Context, bag string, session []byte, bytes, stored uint64) (until time.Time, err error)
}

// SessionReleaser is what an Authorizer may also implement to hear that a
// streamed session was bound to a registered object (and so ended): what
// it reserved for the session can be released.
type SessionReleaser interface {
	ReleaseSession(session []byte)
}

// SessionBinder is what an Authorizer may also implement to hear, before
// BOUND is answered, which registered object a streamed session was bound
// to (a DROP does not call it): the provider node keeps the storage
// contract the session was opened under only once its upload is bound.
// An error is answered FAILED with retry set (the object is recorded, and
// handed to WithObjectBound, already; the node may release the session's
// grant, its chunks being in): the uploader binds again, and SessionBound
// must then succeed whether or not the first call recorded anything.
type SessionBinder interface {
	SessionBound(session []byte, object uint64) error
}

// DropAuthorizer is what an Authorizer may also implement to say who may
// end a streamed session (DROP, or a BIND naming it). The session ID alone is not enough
// once a pipeline forwards through providers: each hop learns the session
// IDs of the hops after it. Without it, knowing the session ID suffices.
type DropAuthorizer interface {
	// AuthorizeDrop returns nil when peer from may drop session of bag.
	// Its error's text is the refusal reason the peer sees.
	AuthorizeDrop(ctx context.Context, bag string, session []byte, from peer.ID) error
}

// authorizeSession asks the Authorizer whether ex's streamed session may
// hold total bytes, stored of them in the block store, and caps ex's
// expiry (the session's and the receipt's) at the end of the grant that
// lets it.
func (h *Handler) authorizeSession(ctx context.Context, ex *storeExchange, total, stored uint64) error {
	sa, ok := h.auth.(SessionAuthorizer)
	if !ok || !IsClientSessionID(ex.session.ID) {
		return h.auth.AuthorizeSession(ctx, ex.bag, total)
	}
	until, err := sa.AuthorizeUploadSession(ctx, ex.bag, ex.session.ID[1:], total, stored)
	if err != nil {
		return err
	}
	capExpiry(ex, until)
	return nil
}

// capExpiry makes until, when set and earlier, the expiry of ex and of the
// session it stores into. The store keeps whole seconds: until is
// truncated to one, never rounded up past the grant.
func capExpiry(ex *storeExchange, until time.Time) {
	if until.IsZero() {
		return
	}
	until = time.Unix(until.Unix(), 0)
	if until.Before(ex.expiry) {
		ex.expiry = until
	}
	if until.Before(ex.session.Expiry) {
		ex.session.Expiry = until
	}
}

// joinsHeld reports whether a chunk the store already holds may be answered
// ALREADY_STORED and join ex's session without its bytes. Only a registered
// object's chunk may: its proof ties it to the content ID the chain holds
// for the object. A streamed session's chunk must be sent, so a peer cannot
// attach blocks of another bag's objects or sessions to its session by
// naming their CIDs.
//
// A chunk to forward joins only when the store can read it back
// (BlockReader), to pass its bytes on; otherwise it is received again.
func (h *Handler) joinsHeld(ex *storeExchange) bool {
	if ex.object == 0 {
		return false
	}
	if len(ex.forward) == 0 {
		return true
	}
	_, ok := h.blocks.(BlockReader)
	return ok
}
