package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Hop tokens. A streamed session (object ID 0) opened under a storage
// contract belongs to the contract's renter, and a pipeline tells every hop
// the sessions of the hops after it. So a session takes chunks from its
// renter, or from another peer (the provider before it in a pipeline) only
// with the renter's token for that chunk at this provider: a forwarder can
// pass on what the renter sent, never store chunks of its own choosing
// under the renter's grant.

// hopTokenDomain starts the bytes a hop token signs.
const hopTokenDomain = "satchel-hop-token/v1\n"

// MaxHopToken bounds a hop token's length: a signature of any libp2p key
// type (RSA-4096's are 512 bytes, ed25519's 64).
const MaxHopToken = 1024

// ErrBadHopToken means a forwarded chunk of a renter's session came without
// the renter's token for it, or with one that does not verify.
var ErrBadHopToken = errors.New("store: invalid hop token")

// SessionOwner is what an Authorizer may also implement to name who opened
// a streamed session: the renter of the storage contract whose grant the
// session is. A chunk of such a session from any other peer must carry the
// renter's hop token (SignHopToken) for the chunk and this provider.
type SessionOwner interface {
	// SessionRenter returns the renter of session of bag, or "" when no
	// live grant names one (the session ID alone then authorises), with
	// the renter's public key when known. A peer ID holds the key itself
	// only for the key types libp2p embeds (ed25519, secp256k1); an RSA or
	// ECDSA peer's ID is a hash of its key, so a hop token of such a renter
	// verifies only against a key learnt elsewhere: from the authenticated
	// connection the renter consigned the session over. A nil key is taken
	// from the renter's ID.
	SessionRenter(ctx context.Context, bag string, session []byte) (peer.ID, crypto.PubKey)
}

// HopTokenBytes returns the exact bytes a hop token's signature covers:
//
//	"satchel-hop-token/v1\n" || uvarint(len(bag_id)) || bag_id
//	  || uvarint(len(session)) || session || uvarint(len(cid)) || cid
//	  || uvarint(len(hop)) || hop
//
// where hop is the binary peer ID of the provider the chunk is forwarded to.
func HopTokenBytes(bag string, session []byte, c cid.Cid, hop peer.ID) []byte {
	b := []byte(hopTokenDomain)
	b = appendField(b, []byte(bag))
	b = appendField(b, session)
	b = appendField(b, c.Bytes())
	return appendField(b, []byte(hop))
}

// SignHopToken returns the renter's (key's) token allowing chunk c into its
// session of bag at provider hop.
func SignHopToken(key crypto.PrivKey, bag string, session []byte, c cid.Cid, hop peer.ID) ([]byte, error) {
	sig, err := key.Sign(HopTokenBytes(bag, session, c, hop))
	if err != nil {
		return nil, fmt.Errorf("store: sign hop token: %w", err)
	}
	return sig, nil
}

// VerifyHopToken checks that token is renter's token for chunk c in its
// session of bag at provider hop, against the public key in renter's ID;
// the error wraps ErrBadHopToken. A renter whose ID does not hold its key
// (RSA, ECDSA) needs VerifyHopTokenKey.
func VerifyHopToken(renter peer.ID, token []byte, bag string, session []byte, c cid.Cid, hop peer.ID) error {
	return VerifyHopTokenKey(renter, nil, token, bag, session, c, hop)
}

// VerifyHopTokenKey is VerifyHopToken against renter's public key pub,
// which must be renter's (its ID is derived from it); a nil pub is taken
// from renter's ID, as VerifyHopToken does.
func VerifyHopTokenKey(renter peer.ID, pub crypto.PubKey, token []byte, bag string, session []byte, c cid.Cid, hop peer.ID) error {
	if len(token) == 0 {
		return fmt.Errorf("%w: the chunk comes from a peer other than the session's renter %s without the renter's hop token", ErrBadHopToken, renter)
	}
	if len(token) > MaxHopToken {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadHopToken, len(token), MaxHopToken)
	}
	if pub == nil {
		var err error
		if pub, err = renter.ExtractPublicKey(); err != nil {
			return fmt.Errorf("%w: no public key in the renter's peer ID %s (an RSA or ECDSA peer's ID is a hash of its key) and none known from its connection: %v", ErrBadHopToken, renter, err)
		}
	} else if !renter.MatchesPublicKey(pub) {
		return fmt.Errorf("%w: the key given for the session's renter %s is not its key", ErrBadHopToken, renter)
	}
	ok, err := pub.Verify(HopTokenBytes(bag, session, c, hop), token)
	if err != nil || !ok {
		return fmt.Errorf("%w: not the session's renter %s's token for chunk %s at this provider", ErrBadHopToken, renter, c)
	}
	return nil
}

// checkHopToken lets a chunk of ex's streamed session in from peer from:
// always when the Authorizer names no renter for the session or from is
// it, else only with the renter's token for the chunk at this provider,
// checked against the renter's key the Authorizer gives (SessionOwner) or,
// failing that, the key in the renter's ID.
func (h *Handler) checkHopToken(ctx context.Context, ex *storeExchange, session []byte, from peer.ID, token []byte) error {
	so, ok := h.auth.(SessionOwner)
	if !ok {
		return nil
	}
	renter, pub := so.SessionRenter(ctx, ex.bag, session)
	if renter == "" || renter == from {
		return nil
	}
	return VerifyHopTokenKey(renter, pub, token, ex.bag, session, ex.chunk, h.self)
}
