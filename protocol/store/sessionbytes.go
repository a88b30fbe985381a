package store

import (
	"fmt"
	"sync"
)

// A streamed session's bytes are counted from two sources: the block
// store's (its chunks stored) and the handler's reservations (chunks agreed
// to and not stored yet). A chunk passes from one to the other when its
// commit stores it and then releases its reservation. A reservation that
// read both in between counted the chunk twice — a session filled to the
// last byte of its grant had a chunk refused, now and then, under load —
// and one that read the store before the put and the reservations after
// the release would miss it, letting the session past its grant. So the
// commit of a session's chunk holds the session's lock shared from its put
// to its release, and a reservation holds it alone while it reads both.

// sessionBytes is a streamed session's byte-count lock and the bytes
// reserved for its chunks agreed to and not stored yet, kept in
// Handler.sessions while anything refers to it: a reservation, or a holder
// of (or waiter for) its lock. One map entry holds both, so a chunk takes
// Handler.rmu twice to reserve and twice to land.
type sessionBytes struct {
	mu       sync.RWMutex
	reserved uint64 // guarded by Handler.rmu
	refs     int    // guarded by Handler.rmu
}

// sessionRef returns session key's entry, created if none, with a reference
// taken for the caller. Call with rmu held.
func (h *Handler) sessionRef(key string) *sessionBytes {
	sb := h.sessions[key]
	if sb == nil {
		sb = &sessionBytes{}
		h.sessions[key] = sb
	}
	sb.refs++
	return sb
}

// sessionUnref drops a reference to sb, the entry of key, and the entry with
// its last. Call with rmu held.
func (h *Handler) sessionUnref(key string, sb *sessionBytes) {
	if sb.refs--; sb.refs == 0 {
		delete(h.sessions, key)
	}
}

// countSession returns the bytes ex's session holds and has reserved with
// ex's chunk added (total), and those of them the block store holds
// (stored), and reserves the chunk's bytes (release returns them). The
// reference taken for the lock passes to the reservation.
func (h *Handler) countSession(ex *storeExchange) (total, stored uint64, err error) {
	key := string(ex.session.ID)
	h.rmu.Lock()
	sb := h.sessionRef(key)
	h.rmu.Unlock()
	if h.cfg.countWait != nil {
		h.cfg.countWait()
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sess, stored, open, err := h.blocks.SessionInfo(ex.session.ID)
	if err == nil && open && sess.Bag != ex.bag {
		err = fmt.Errorf("session belongs to bag %s, not %s", sess.Bag, ex.bag)
	} else if err != nil {
		err = fmt.Errorf("provider cannot read its store: %w", err)
	}
	h.rmu.Lock()
	defer h.rmu.Unlock()
	if err != nil {
		h.sessionUnref(key, sb)
		return 0, 0, err
	}
	total = stored + sb.reserved + ex.length
	sb.reserved += ex.length
	ex.reservedKey, ex.reservedBytes = key, sb
	return total, stored, nil
}

// land stores ex's chunk with put and, once it is stored, releases the
// chunk's reservation, holding ex's session lock shared throughout when ex
// reserved session bytes (a panic in put unlocks it too). The release
// drops the lock's reference with the reservation's: once the reservation
// is gone the chunk counts in the store alone, and nothing is left for the
// lock to order.
func (h *Handler) land(ex *storeExchange, put func() error) error {
	h.rmu.Lock()
	key, sb := ex.reservedKey, ex.reservedBytes
	if sb != nil {
		sb.refs++
	}
	h.rmu.Unlock()
	if sb == nil { // a registered object's chunk: no session bytes
		return put()
	}
	sb.mu.RLock()
	defer sb.mu.RUnlock()
	stored := false
	defer func() { // before the unlock; on a panic too
		h.rmu.Lock()
		defer h.rmu.Unlock()
		if stored {
			h.releaseLocked(ex)
		}
		h.sessionUnref(key, sb)
	}()
	if err := put(); err != nil {
		return err
	}
	stored = true
	return nil
}

// release returns an exchange's reserved session bytes.
func (h *Handler) release(ex *storeExchange) {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	h.releaseLocked(ex)
}

// releaseLocked is release with rmu held.
func (h *Handler) releaseLocked(ex *storeExchange) {
	sb := ex.reservedBytes
	if sb == nil {
		return
	}
	sb.reserved -= min(sb.reserved, ex.length)
	h.sessionUnref(ex.reservedKey, sb)
	ex.reservedKey, ex.reservedBytes = "", nil
}
