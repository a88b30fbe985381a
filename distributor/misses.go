package distributor

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
)

// takeMiss takes one of the --max-misses slots, which bound the memory
// answers needing blocks from the network hold (the leaves they send and
// read ahead), waiting while every slot is taken. It reports false when
// the client left first. Give the slot back with doneMiss.
func (s *Server) takeMiss(ctx context.Context) bool {
	select {
	case s.misses <- struct{}{}:
		return true
	default:
	}
	s.m.missWaiting.Inc()
	defer s.m.missWaiting.Dec()
	select {
	case s.misses <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// doneMiss gives back a slot takeMiss took.
func (s *Server) doneMiss() { <-s.misses }

// missSlot is one answer's --max-misses slot: taken before the answer's
// first block from the network (at its start, for an answer known to need
// one) and held while the answer fetches and sends, so that an answer that
// started from the cache and finds its object evicted fetches the rest
// under a slot too. The readers of one answer share it. A nil missSlot
// bounds nothing.
//
// The slot bounds the work of fetching, not the time a client takes to
// read or providers stay busy: an answer that spends stallAfter blocked
// writing to its client between two fetches parks (see
// objectReader.stall), as does one whose fetch pauses for busy providers
// (objectReader.await): it gives the slot back, keeping what it holds (at
// most its leaf and those read ahead) only under one of the parked tokens,
// and takes a slot again before it fetches more. An answer holding leaves
// from the network holds a slot or a token.
type missSlot struct {
	s *Server
	// client is the answer's client: a held slot is one of its client's
	// share too (missShares).
	client netip.Prefix
	// ctx ends with the request or when the answer ends (stop, release):
	// a take waiting for a slot then returns.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// held is set while the slot is held; it changes under mu and is read
	// without it by the writer, which arms its stall timer only then.
	held   atomic.Bool
	parked bool // holds a parked token: the answer keeps its leaves while parked
	// fetches counts the answer's network fetches, each of which starts
	// its stall time afresh.
	fetches atomic.Int64
}

// newMissSlot returns the slot of an answer to r, not taken yet.
func (s *Server) newMissSlot(r *http.Request) *missSlot {
	ctx, cancel := context.WithCancel(r.Context())
	return &missSlot{s: s, ctx: ctx, cancel: cancel, client: requestClient(r)}
}

// take takes the slot unless held already, waiting while every slot is
// taken; a parked token, which bounds what the answer kept while parked,
// is given back once the slot is held. It fails with ctx's error when the
// client left first or the answer ended (a reader's goroutine outliving it
// takes no slot it would never give back).
func (m *missSlot) take() error {
	if m == nil {
		return nil
	}
	if m.held.Load() {
		return nil
	}
	if err := m.ctx.Err(); err != nil {
		return err // no fetch for an answer that ended, even with a slot free
	}
	if !m.s.takeShare(m.ctx, m.client) {
		return m.ctx.Err()
	}
	if !m.s.takeMiss(m.ctx) {
		m.s.shares.Release(m.client)
		return m.ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.held.Load(): // another reader of the answer took it meanwhile
		m.s.doneMiss()
		m.s.shares.Release(m.client)
	case m.ctx.Err() != nil: // the answer ended meanwhile
		m.s.doneMiss()
		m.s.shares.Release(m.client)
		return m.ctx.Err()
	default:
		m.held.Store(true)
	}
	m.unparkLocked()
	return nil
}

// holds reports whether the slot is held now.
func (m *missSlot) holds() bool { return m != nil && m.held.Load() }

// park gives the slot back while the answer waits on its client holding
// nothing from the network; the next fetch takes one again. It reports
// whether the slot was held.
func (m *missSlot) park() bool { return m.give(false) }

// parkKeeping gives the slot back, as park, for an answer that keeps the
// leaves it holds from the network (at most what it held under the slot)
// while it waits: only if one of the parked tokens (as many as slots) is
// free, which it then holds until it takes a slot again or ends. It
// reports whether it parked.
func (m *missSlot) parkKeeping() bool { return m.give(true) }

// give parks the held slot, taking a parked token first when keep is set
// (and not parking when none is free).
func (m *missSlot) give(keep bool) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held.Load() || m.ctx.Err() != nil {
		return false
	}
	if keep {
		select {
		case m.s.parked <- struct{}{}:
			m.parked = true
		default:
			return false
		}
	}
	m.giveLocked()
	return true
}

// giveLocked parks: it gives the held slot back.
func (m *missSlot) giveLocked() {
	m.unholdLocked()
	m.s.m.parks.Inc()
}

// unholdLocked gives the slot, and its client's share, back if held.
func (m *missSlot) unholdLocked() {
	if m.held.Swap(false) {
		m.s.doneMiss()
		m.s.shares.Release(m.client)
	}
}

// unparkLocked gives back the parked token, if held.
func (m *missSlot) unparkLocked() {
	if m.parked {
		m.parked = false
		<-m.s.parked
	}
}

// stop ends the answer for take: a read waiting for a slot returns (and
// lets go of its reader, which Close waits for), and no slot is taken
// after. The slot, if held, stays held until release.
func (m *missSlot) stop() { m.cancel() }

// release gives the slot (and a parked token) back if taken; the answer
// takes none after.
func (m *missSlot) release() {
	m.cancel() // before the lock: no take starts waiting after
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unparkLocked()
	m.unholdLocked()
}
