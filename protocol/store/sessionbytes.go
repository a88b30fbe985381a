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

// sessionLock is a session's byte-count lock with the number of its
// holders and waiters, so it is dropped once none is left.
type sessionLock struct {
	mu   sync.RWMutex
	refs int // guarded by Handler.rmu
}

// sessionLock returns the lock of session key; call done once it is
// unlocked.
func (h *Handler) sessionLock(key string) (l *sync.RWMutex, done func()) {
	h.rmu.Lock()
	sl := h.locks[key]
	if sl == nil {
		sl = &sessionLock{}
		h.locks[key] = sl
	}
	sl.refs++
	h.rmu.Unlock()
	return &sl.mu, func() {
		h.rmu.Lock()
		if sl.refs--; sl.refs == 0 {
			delete(h.locks, key)
		}
		h.rmu.Unlock()
	}
}

// countSession returns the bytes ex's session holds and has reserved with
// ex's chunk added, and reserves the chunk's bytes (release returns them).
func (h *Handler) countSession(ex *storeExchange) (uint64, error) {
	key := string(ex.session.ID)
	l, done := h.sessionLock(key)
	defer done()
	if h.cfg.countWait != nil {
		h.cfg.countWait()
	}
	l.Lock()
	defer l.Unlock()
	sess, stored, open, err := h.blocks.SessionInfo(ex.session.ID)
	if err != nil {
		return 0, fmt.Errorf("provider cannot read its store: %w", err)
	}
	if open && sess.Bag != ex.bag {
		return 0, fmt.Errorf("session belongs to bag %s, not %s", sess.Bag, ex.bag)
	}
	h.rmu.Lock()
	defer h.rmu.Unlock()
	total := stored + h.reserved[key] + ex.length
	h.reserved[key] += ex.length
	ex.reservedKey = key
	return total, nil
}

// land stores ex's chunk with put and, once it is stored, releases the
// chunk's reservation, holding ex's session lock shared throughout when ex
// reserved session bytes (a panic in put unlocks it too).
func (h *Handler) land(ex *storeExchange, put func() error) error {
	h.rmu.Lock()
	key := ex.reservedKey
	h.rmu.Unlock()
	if key != "" {
		l, done := h.sessionLock(key)
		defer done()
		l.RLock()
		defer l.RUnlock()
	}
	if err := put(); err != nil {
		return err
	}
	h.release(ex)
	return nil
}
