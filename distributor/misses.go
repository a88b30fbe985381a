package distributor

import (
	"context"
	"errors"
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
	s   *Server
	ctx context.Context

	mu   sync.Mutex
	held bool
	// done: released, the answer ended; no slot is taken any more (a
	// safeguard: the answer's readers are closed before it is released)
	done bool
}

// newMissSlot returns the slot of an answer to a request of ctx, not
// taken yet.
func (s *Server) newMissSlot(ctx context.Context) *missSlot {
	return &missSlot{s: s, ctx: ctx}
}

// take takes the slot unless held already, waiting while every slot is
// taken; it fails with ctx's error when the client left first, and once the
// answer ended (a reader's goroutine outliving it takes no slot it would
// never give back).
func (m *missSlot) take() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return errAnswerDone
	}
	if m.held {
		return nil
	}
	if err := m.ctx.Err(); err != nil {
		return err // the client left: no fetch for it, even with a slot free
	}
	if !m.s.takeMiss(m.ctx) {
		return m.ctx.Err()
	}
	m.held = true
	return nil
}

// errAnswerDone is take's error after release.
var errAnswerDone = errors.New("distributor: the answer ended")

// release gives the slot back if it was taken; the answer takes none
// after.
func (m *missSlot) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	if m.held {
		m.held = false
		m.s.doneMiss()
	}
}
