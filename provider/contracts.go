package provider

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/topics"
)

// UploadGrants gives the store grant a consigned storage contract opened
// under a session, and slides it with the session's chunks;
// *contracts.Responder implements it.
type UploadGrants interface {
	Grant(session []byte) (contracts.Grant, bool)
	// ExtendGrant grows the room the live grant under session reserved to
	// cover total bytes (the session's stored, agreed to and in flight,
	// and this chunk), of which stored are on disk, makes the grant and
	// its room last one grant TTL from now (no later than its contract's
	// end) if that is later, and returns it; an error when none is live
	// or the room ran out.
	ExtendGrant(ctx context.Context, session []byte, total, stored uint64) (contracts.Grant, error)
}

// grantSource holds the node's UploadGrants, set once its contract
// responder runs.
type grantSource struct{ p atomic.Pointer[grantHooks] }

// grantHooks is the node's UploadGrants.
type grantHooks struct{ grants UploadGrants }

// get returns the node's UploadGrants, nil when it takes no contracts.
func (g *grantSource) get() UploadGrants {
	if h := g.p.Load(); h != nil {
		return h.grants
	}
	return nil
}

// SetUploadGrants makes the node take streamed upload sessions under the
// grants g gives (its contract responder's). Without it, or for a session
// g does not know, a streamed session is refused: a provider stores chunks
// of an unregistered object only under a consigned contract, whose renter
// CONSIGN checked is a member on chain and whose room the responder's
// ledger reserved. Chunks of a registered object are authorised by the
// chain alone.
func (s *Server) SetUploadGrants(g UploadGrants) {
	if g == nil {
		s.auth.grants.p.Store(nil)
		return
	}
	s.auth.grants.p.Store(&grantHooks{grants: g})
}

// AuthorizeUploadSession implements store.SessionAuthorizer: a streamed
// session may hold n bytes for bag while a consigned contract's grant names
// the session, for that bag, with at least n bytes reserved, and the bag is
// still assigned to the node's bucket. A chunk so authorized slides the
// grant (ExtendGrant): it and the contract's reservation in the room
// ledger then last one grant TTL from now, so an upload slower than one
// TTL keeps its session while its chunks keep coming. The grant's room
// counts as on disk only stored, the bytes the block store holds in the
// session as the store handler read them with n (so the store is not read
// again per chunk), not n, which also counts chunks agreed to and not
// stored yet (a chunk refused after it was agreed to never is). It returns the
// grant's end: the session's unbound chunks are kept no later than that
// (the block store's session expiry, which keeps the latest of its
// chunks', deletes them then), when the reservation lapses too, so no byte
// an unbound session holds on disk outlives the room counted for it.
func (a *chainAuth) AuthorizeUploadSession(ctx context.Context, bag string, session []byte, n, stored uint64) (time.Time, error) {
	hooks := a.grants.p.Load()
	if hooks == nil {
		return time.Time{}, fmt.Errorf("%w: this provider takes chunks of an unregistered object (object ID 0) only under a storage contract, and it takes no contracts; register the object first and push its chunks with their proofs", ErrNotAuthorized)
	}
	g, ok := hooks.grants.Grant(session)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: no consigned storage contract opened this upload session (or its grant lapsed); negotiate a contract, or register the object first and push its chunks with their proofs", ErrNotAuthorized)
	}
	if string(g.Bag) != bag {
		return time.Time{}, fmt.Errorf("%w: the session's contract %s is for bag %s, not %s", ErrNotAuthorized, g.ContractID, g.Bag, bag)
	}
	if n > g.MaxBytes {
		return time.Time{}, fmt.Errorf("%w: the upload session would hold %d bytes, but contract %s reserved %d", ErrNotAuthorized, n, g.ContractID, g.MaxBytes)
	}
	if _, err := a.assigned(ctx, bag); err != nil {
		return time.Time{}, err
	}
	slid, err := hooks.grants.ExtendGrant(ctx, session, n, stored)
	switch {
	case errors.Is(err, contracts.ErrNoRoom):
		return time.Time{}, fmt.Errorf("%w: %v", ErrNotAuthorized, err)
	case err != nil:
		return time.Time{}, fmt.Errorf("%w: the grant of contract %s lapsed (%v); negotiate a new contract", ErrNotAuthorized, g.ContractID, err)
	}
	return slid.Expires, nil
}

// sessionStorer is what the node's UploadGrants may also implement to
// hear that a chunk of a session landed (*contracts.Responder does).
type sessionStorer interface {
	SessionStored(session []byte, stored uint64)
}

// landed passes on, once a chunk of a streamed upload session is on disk
// (err nil), the bytes the session now holds to the node's grants, so the
// contract's reservation counts the chunk as received at once: the
// figure AuthorizeUploadSession passes is read before the chunk is stored.
// It returns err.
func (b diskFullBlocks) landed(s store.Session, err error) error {
	if err != nil || b.n == nil || !store.IsClientSessionID(s.ID) {
		return err
	}
	st, ok := b.n.s.auth.grants.get().(sessionStorer)
	if !ok {
		return nil
	}
	// The chunk is stored: a failed read of the session's bytes leaves it
	// counted at the next chunk, as before, and fails nothing.
	if _, n, open, ierr := b.SessionInfo(s.ID); ierr == nil && open {
		st.SessionStored(s.ID[1:], n)
	}
	return nil
}

// ReleaseSession implements store.SessionReleaser: a session bound to a
// registered object ends its contract's grant and returns its room (the
// contract responder's Release), which the bucket's voucher now counts.
func (a *chainAuth) ReleaseSession(session []byte) {
	if r, ok := a.grants.get().(interface{ Release(session []byte) }); ok {
		r.Release(session)
	}
}

// SessionBound implements store.SessionBinder: the storage contract whose
// grant opened session, stored as an open upload at CONSIGN, is kept to
// its end now that the upload is bound to object (the contract
// responder's Bound); an open upload never bound is deleted a grant TTL
// after its grant lapsed. Called before BOUND is answered: an error (the
// contract store could not record it) is answered FAILED with retry set and
// the grant released (its chunks are in), and a BIND repeated records the
// contract then, found by its session, or finds it recorded.
func (a *chainAuth) SessionBound(session []byte, object uint64) error {
	b, ok := a.grants.get().(interface {
		Bound(session []byte, obj chain.ObjectID) error
	})
	if !ok {
		return nil
	}
	return b.Bound(session, chain.ObjectID(object))
}

// SessionRenter implements store.SessionOwner: the renter of the contract
// whose live grant is session, so that a chunk a pipeline hop forwards into
// it needs the renter's hop token, with the key its CONSIGN's connection
// authenticated (the grant's RenterKey: a renter with an RSA or ECDSA key,
// which its peer ID does not hold, is checked against it). "" for a
// session no live grant names.
func (a *chainAuth) SessionRenter(_ context.Context, _ string, session []byte) (peer.ID, crypto.PubKey) {
	gr := a.grants.get()
	if gr == nil {
		return "", nil
	}
	g, ok := gr.Grant(session)
	if !ok || g.Renter == "" {
		return "", nil
	}
	return g.Renter, g.RenterKey
}

// AuthorizeDrop implements store.DropAuthorizer: a session opened under a
// contract's grant may be dropped (or bound) by the contract's renter only, not by a
// provider a pipeline forwarded its chunks through (which learns the
// session ID). A session no live grant names holds nothing a DROP could
// take from a renter: it is left to the session ID, as before.
func (a *chainAuth) AuthorizeDrop(_ context.Context, bag string, session []byte, from peer.ID) error {
	gr := a.grants.get()
	if gr == nil {
		return nil
	}
	g, ok := gr.Grant(session)
	if !ok || g.Renter == "" || g.Renter == from {
		return nil
	}
	return fmt.Errorf("%w: only the renter of contract %s (%s) may drop or bind its upload session of bag %s", ErrNotAuthorized, g.ContractID, g.Renter, bag)
}

// CheckMirror implements contracts.Mirrorer: the contract must name a
// registered object whose size on chain is the contract's and whose content
// ID is the contract's (when it names one); it returns the object as read.
// The responder asks before it reserves room or stores the contract, so a
// mismatch changes nothing, and hands the object to Mirror.
func (s *Server) CheckMirror(ctx context.Context, c *contracts.Contract) (chain.DataObject, error) {
	if c.Object == 0 {
		return chain.DataObject{}, fmt.Errorf("%w: contract %s names no registered object to mirror", contracts.ErrMalformed, c.ID)
	}
	o, err := s.c.DataObject(ctx, c.Bag, c.Object)
	if err != nil {
		return chain.DataObject{}, fmt.Errorf("provider: mirror object %d of bag %s: %w", c.Object, c.Bag, err)
	}
	if c.ContentID != "" && c.ContentID != o.ContentID {
		return chain.DataObject{}, fmt.Errorf("%w: contract %s names content ID %s, the chain holds %s for object %d", contracts.ErrMalformed, c.ID, c.ContentID, o.ContentID, c.Object)
	}
	if o.Size != c.Size {
		return chain.DataObject{}, fmt.Errorf("%w: contract %s is for %d bytes, object %d of bag %s has %d on chain", contracts.ErrMalformed, c.ID, c.Size, c.Object, c.Bag, o.Size)
	}
	return o, nil
}

// Mirror implements contracts.Mirrorer: it queues c's registered object o,
// as CheckMirror read and checked it, on the node's sync, to be copied from
// sources, providers that hold it, the way sync does — the DAG walked from
// the chain's content ID down, every block verified against its CID, the
// manifest recorded — so a replica lost with a wiped disk is restored
// without its uploader. It returns once the copy is queued: the sync queue
// holds one job per object (a MIRROR of an object already queued adds its
// sources to the job's, up to MaxMirrorSources, never replacing them),
// runs them on its bounded workers and retries a failed copy from the
// bag's providers.
func (s *Server) Mirror(_ context.Context, c *contracts.Contract, o chain.DataObject, sources []peer.ID) error {
	s.syncer.add(syncJob{bag: c.Bag, object: o, sources: sources})
	s.log.Info("mirror queued", "contract", c.ID, "bag", c.Bag, "object", uint64(c.Object), "bytes", o.Size, "sources", len(sources))
	return nil
}

// ContractStatus is the storage contract side of a node's Status: the
// contract topics it subscribes to and what it did with proposals.
type ContractStatus struct {
	// Topics are the contract topics subscribed to (hex).
	Topics []string `json:"topics"`
	// Proposals counts proposals received on them; Offers the offers made;
	// NotAssigned those for bags not assigned to the bucket; NotOwner those
	// whose renter is not the bag's owner on chain; NoRoom those
	// refused for want of voucher or disk room; Busy those left unanswered
	// because their renter (or the node) had too many offers pending.
	Proposals   int64 `json:"proposals"`
	Offers      int64 `json:"offers"`
	NotAssigned int64 `json:"notAssigned"`
	NotOwner    int64 `json:"notOwner"`
	NoRoom      int64 `json:"noRoom"`
	Busy        int64 `json:"busy"`
	// Consigned counts contracts consigned; OpenSessions the upload
	// sessions their grants keep open now; Undelivered the grants dropped
	// with their room because their answer never reached the renter.
	Consigned    int64 `json:"consigned"`
	OpenSessions int   `json:"openSessions"`
	Undelivered  int64 `json:"undelivered"`
	// ReservedBytes is the room the open contracts reserve now: a window
	// ahead of each upload's received bytes, and each MIRROR's object.
	ReservedBytes uint64 `json:"reservedBytes"`
}

// contractReporter is what the status page reads of the node's contract
// responder; *contracts.Responder implements it.
type contractReporter interface {
	Topics() []topics.Topic
	Stats() contracts.ResponderStats
	OpenGrants() int
	Reserved() uint64
}

// contractStatus reports the node's contract side, or nil when it runs
// none.
func (s *Server) contractStatus() *ContractStatus {
	r, ok := s.auth.grants.get().(contractReporter)
	if !ok {
		return nil
	}
	st := r.Stats()
	out := &ContractStatus{Topics: []string{}, Proposals: st.Proposals, Offers: st.Offers, NotAssigned: st.NotAssigned,
		NotOwner: st.NotOwner, NoRoom: st.NoRoom, Busy: st.Busy, Consigned: st.Consigned, OpenSessions: r.OpenGrants(),
		Undelivered: st.Undelivered, ReservedBytes: r.Reserved()}
	for _, t := range r.Topics() {
		out.Topics = append(out.Topics, t.String())
	}
	return out
}
