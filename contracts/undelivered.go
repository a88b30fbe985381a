package contracts

import "time"

// undeliveredGrantTTL is how long a grant whose StoreGrant answer could not
// be written waits for the renter to ask again: as long as a renter keeps
// sending the CONSIGN (consignAttempts sends, each waiting StreamTimeout
// for its answer). A renter that gave up before a slow provider consigned
// never learns the session, so the grant is dropped and its room given
// back then, not held for GrantTTL.
const undeliveredGrantTTL = consignAttempts * (StreamTimeout + consignRetryAfter)

// answered records whether the StoreGrant answer of session reached the
// renter's stream. Once one answer of it was written, the grant is the
// renter's. While none was, it is dropped, with its room,
// undeliveredGrantTTL after the last answer that failed. (A retry that
// waited for the CONSIGN in flight may be answered before that one's
// failed write is seen: its written answer counts all the same.)
func (r *Responder) answered(session [16]byte, written bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, live := r.grants[session]; !live {
		return
	}
	if _, ok := r.delivered[session]; ok {
		return
	}
	if written {
		r.deliveredLocked(session)
		return
	}
	if t, ok := r.undelivered[session]; ok {
		t.Stop()
		delete(r.undelivered, session)
	}
	// The timer reads t only under r.mu, which is held until t is set.
	var t *time.Timer
	t = time.AfterFunc(r.undeliveredTTL, func() { r.dropUndelivered(session, &t) })
	r.undelivered[session] = t
}

// deliveredLocked records that the renter holds session's grant (an answer
// of it was written, or a chunk came under it): it is no longer dropped as
// undelivered. Called with r.mu held.
func (r *Responder) deliveredLocked(session [16]byte) {
	if _, ok := r.delivered[session]; ok {
		return
	}
	if t, ok := r.undelivered[session]; ok {
		t.Stop()
		delete(r.undelivered, session)
	}
	r.delivered[session] = struct{}{}
}

// dropUndelivered drops the grant of session, and gives its room back, if
// its answer was still not delivered and the timer *t is still its timer
// (one that fired while a later failed write replaced it leaves the grant
// to the new one).
func (r *Responder) dropUndelivered(session [16]byte, t **time.Timer) {
	r.mu.Lock()
	still := r.undelivered[session] == *t
	g, live := r.grants[session]
	if still && live {
		r.dropGrant(g)
	}
	r.mu.Unlock()
	if !still || !live {
		return
	}
	if rel, ok := r.room.(RoomReleaser); ok {
		rel.Release(g.ContractID)
	}
	r.count(func(s *ResponderStats) { s.Undelivered++ })
	r.log.Info("grant dropped: its answer never reached the renter", "contract", g.ContractID, "renter", g.Renter)
}

// stopUndelivered stops the timers of undelivered grants (on Close).
func (r *Responder) stopUndelivered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, t := range r.undelivered {
		t.Stop()
		delete(r.undelivered, s)
	}
}
