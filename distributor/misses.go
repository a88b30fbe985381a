package distributor

import (
	"context"
	"sync"
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
// one) and held until the answer ends, so that an answer that started from
// the cache and finds its object evicted fetches the rest under a slot too.
// The readers of one answer share it. A nil missSlot bounds nothing.
type missSlot struct {
	s *Server
	// ctx ends with the request or when the answer ends (stop, release):
	// a take waiting for a slot then returns.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	held bool
}

// newMissSlot returns the slot of an answer to a request of ctx, not
// taken yet.
func (s *Server) newMissSlot(ctx context.Context) *missSlot {
	ctx, cancel := context.WithCancel(ctx)
	return &missSlot{s: s, ctx: ctx, cancel: cancel}
}

// take takes the slot unless held already, waiting while every slot is
// taken; it fails with ctx's error when the client left first or the
// answer ended (a reader's goroutine outliving it takes no slot it would
// never give back).
func (m *missSlot) take() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held {
		return nil
	}
	if err := m.ctx.Err(); err != nil {
		return err // no fetch for an answer that ended, even with a slot free
	}
	if !m.s.takeMiss(m.ctx) {
		return m.ctx.Err()
	}
	m.held = true
	return nil
}

// stop ends the answer for take: a read waiting for a slot returns (and
// lets go of its reader, which Close waits for), and no slot is taken
// after. The slot, if held, stays held until release.
func (m *missSlot) stop() { m.cancel() }

// release gives the slot back if it was taken; the answer takes none
// after.
func (m *missSlot) release() {
	m.cancel() // before the lock: a take waiting holds it
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held {
		m.held = false
		m.s.doneMiss()
	}
}
