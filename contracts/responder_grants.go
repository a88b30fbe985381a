package contracts

import (
	"context"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// The Responder's store grants: the upload sessions CONSIGN opens, how
// they slide with their chunks, and how BIND ends them.

// Grant returns the store grant a CONSIGN opened under session (the
// session field of /satchel/store/1.0.0 requests), while it has not lapsed.
// The store handler asks it before it takes a session's chunks: a provider
// stores only under a consigned contract.
func (r *Responder) Grant(session []byte) (Grant, bool) {
	if len(session) != 16 {
		return Grant{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.grants[[16]byte(session)]
	if !ok || time.Now().After(g.Expires) {
		return Grant{}, false
	}
	return g, true
}

// ExtendGrant slides the live grant under session with its upload: the
// provider node asks it for each chunk request it agrees to take into the
// session (a renter's, or one a pipeline hop forwards), with total, the
// bytes the session would then hold (its chunks stored, those agreed to
// and in flight, and this one), and stored, those of them on disk. The
// contract's reservation first grows to cover total (a Room that is a
// RoomGrower, as *Ledger: it reaches one window ahead, reading the room
// when it must grow, and counts only stored as no longer pending on the
// disk);
// then the grant, and the reservation, last until max(their end, now + the
// grant TTL), no later than the contract's End, so an upload that takes
// longer than one TTL keeps its session as long as its chunks keep coming,
// while an idle grant lapses one TTL after its last chunk. It returns the
// grant as extended (the store handler caps the session's expiry at its
// Expires); an error wrapping ErrNotFound when no live grant is under
// session or the Room no longer counts its reservation, ErrNoRoom when
// the room ran out before total. A chunk under the grant shows that
// its renter learned the session: the grant is no longer dropped as
// undelivered.
func (r *Responder) ExtendGrant(ctx context.Context, session []byte, total, stored uint64) (Grant, error) {
	g, ok := r.Grant(session)
	if !ok {
		return Grant{}, fmt.Errorf("%w: no live grant under this session", ErrNotFound)
	}
	if gr, ok := r.room.(RoomGrower); ok {
		// Outside r.mu: growing may read the chain.
		if err := gr.Grow(ctx, g.ContractID, total, stored); err != nil {
			return Grant{}, err
		}
	}
	g, err := r.slideGrant([16]byte(session))
	if err != nil {
		return Grant{}, err
	}
	r.keepOpen(g)
	return g, nil
}

// SessionStored records that the upload under session holds stored bytes
// on disk, a chunk of it having just landed: the provider node calls it
// once the block store has the chunk, so its contract's reservation (a
// Room that is a RoomReceiver, as *Ledger) counts the chunk as received
// at once rather than when the next chunk is asked. A session no live
// grant names is ignored.
func (r *Responder) SessionStored(session []byte, stored uint64) {
	g, ok := r.Grant(session)
	if !ok {
		return
	}
	if rr, ok := r.room.(RoomReceiver); ok {
		rr.Received(g.ContractID, stored)
	}
}

// slideGrant slides the live grant under s and its reservation.
func (r *Responder) slideGrant(s [16]byte) (Grant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.grants[s]
	if !ok || time.Now().After(g.Expires) {
		return Grant{}, fmt.Errorf("%w: no live grant under this session", ErrNotFound)
	}
	r.deliveredLocked(s)
	ext, ok := r.room.(RoomExtender)
	if !ok {
		return g, nil
	}
	// Under r.mu, so a Release or a lapse dropping the grant meanwhile
	// cannot leave it extended without its reservation.
	until, live := ext.Extend(g.ContractID)
	if !live {
		return Grant{}, fmt.Errorf("%w: the reservation of contract %s lapsed", ErrNotFound, g.ContractID)
	}
	if until.After(g.Expires) {
		g.Expires = until
		r.grants[s] = g
	}
	return g, nil
}

// keepOpen moves the stored deadline of g's open upload a grant TTL past
// g's end once g slid to within half a TTL of it: one write per half TTL
// of upload, so the deadline always lies past the grant's end.
func (r *Responder) keepOpen(g Grant) {
	if g.openUntil.IsZero() || g.Expires.Add(GrantTTL/2).Before(g.openUntil) {
		return
	}
	until := g.Expires.Add(GrantTTL)
	if err := r.store.ExtendOpen(g.ContractID, r.id.Key.Account(), until); err != nil {
		r.log.Warn("keeping an open upload's contract", "contract", g.ContractID, "err", err)
		return
	}
	r.mu.Lock()
	if cur, ok := r.grants[g.Session]; ok && cur.openUntil.Before(until) {
		cur.openUntil = until
		r.grants[g.Session] = cur
	}
	r.mu.Unlock()
}

// sweepGrantsLocked drops the grants that lapsed, once one may have
// (grantsSweepAt). Called with r.mu held.
func (r *Responder) sweepGrantsLocked(now time.Time) {
	if r.grantsSweepAt.IsZero() || now.Before(r.grantsSweepAt) {
		return
	}
	r.grantsSweepAt = time.Time{}
	for _, g := range r.grants {
		if now.After(g.Expires) {
			r.dropGrant(g)
		} else {
			r.grantsSweepAt = minNonZero(r.grantsSweepAt, g.Expires)
		}
	}
}

// Bound records that the upload under session was bound to data object
// obj: its contract, stored open at CONSIGN, is kept until its end. The
// provider node calls it at BIND before it answers BOUND, also for a
// session whose grant is gone (the node restarted while its renter held
// every chunk); a session no contract opened is ignored.
//
// When the contract cannot be recorded (the node answers FAILED, and the
// renter binds again) the grant is released all the same: the node has
// recorded the object and ended the session by then, so the grant would
// take no more chunks, while its reservation would count the object's
// bytes beside the voucher, which charges the registered object, and hold
// one of the member's open uploads, until the grant lapsed. The BIND
// repeated needs no grant: the open contract is found by its session.
func (r *Responder) Bound(session []byte, obj chain.ObjectID) error {
	if len(session) != 16 {
		return nil
	}
	id, ok, err := r.store.Settle([16]byte(session), obj)
	if err != nil {
		r.Release(session)
		return fmt.Errorf("contracts: record a bound upload's contract: %w", err)
	}
	if ok {
		r.log.Debug("contract upload bound", "contract", id, "object", uint64(obj))
	}
	return nil
}

// Release ends the grant that opened session once its upload is bound to
// a registered object, and returns the contract's room to the Room (when
// it is a RoomReleaser): the chain charged the object to the bucket's
// voucher, so the reservation would count it twice until the grant lapsed.
func (r *Responder) Release(session []byte) {
	if len(session) != 16 {
		return
	}
	r.mu.Lock()
	g, ok := r.grants[[16]byte(session)]
	if ok {
		r.dropGrant(g)
	}
	r.mu.Unlock()
	if rel, isRel := r.room.(RoomReleaser); ok && isRel {
		rel.Release(g.ContractID)
	}
}

// OpenGrants returns the number of store grants CONSIGN opened that have
// not lapsed: the upload sessions the provider takes now.
func (r *Responder) OpenGrants() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, now := 0, time.Now()
	for _, g := range r.grants {
		if !now.After(g.Expires) {
			n++
		}
	}
	return n
}

// Reserved returns the bytes the responder's Room holds reserved for open
// contracts, when it says (*Ledger does); 0 otherwise.
func (r *Responder) Reserved() uint64 {
	if l, ok := r.room.(interface{ Reserved() uint64 }); ok {
		return l.Reserved()
	}
	return 0
}
