package provider

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/satchel-net/satchel/contracts"
)

// UploadGrants gives the store grant a consigned storage contract opened
// under a session; *contracts.Responder implements it.
type UploadGrants interface {
	Grant(session []byte) (contracts.Grant, bool)
}

// grantSource holds the node's UploadGrants, set once its contract
// responder runs.
type grantSource struct{ g atomic.Pointer[UploadGrants] }

// SetUploadGrants makes the node take streamed upload sessions under the
// grants g gives (its contract responder's). Without it, or for a session
// g does not know, a streamed session is refused: a provider stores chunks
// of an unregistered object only under a consigned contract, whose renter
// CONSIGN checked is a member on chain and whose room the responder's
// ledger reserved. Chunks of a registered object are authorised by the
// chain alone.
func (s *Server) SetUploadGrants(g UploadGrants) {
	if g == nil {
		s.auth.grants.g.Store(nil)
		return
	}
	s.auth.grants.g.Store(&g)
}

// AuthorizeUploadSession implements store.SessionAuthorizer: a streamed
// session may hold n bytes for bag while a consigned contract's grant names
// the session, for that bag, with at least n bytes reserved, and the bag is
// still assigned to the node's bucket.
func (a *chainAuth) AuthorizeUploadSession(ctx context.Context, bag string, session []byte, n uint64) error {
	gp := a.grants.g.Load()
	if gp == nil {
		return fmt.Errorf("%w: this provider takes chunks of an unregistered object (object ID 0) only under a storage contract, and it takes no contracts; register the object first and push its chunks with their proofs", ErrNotAuthorized)
	}
	g, ok := (*gp).Grant(session)
	if !ok {
		return fmt.Errorf("%w: no consigned storage contract opened this upload session (or its grant lapsed); negotiate a contract, or register the object first and push its chunks with their proofs", ErrNotAuthorized)
	}
	if string(g.Bag) != bag {
		return fmt.Errorf("%w: the session's contract %s is for bag %s, not %s", ErrNotAuthorized, g.ContractID, g.Bag, bag)
	}
	if n > g.MaxBytes {
		return fmt.Errorf("%w: the upload session would hold %d bytes, but contract %s reserved %d", ErrNotAuthorized, n, g.ContractID, g.MaxBytes)
	}
	_, err := a.assigned(ctx, bag)
	return err
}
