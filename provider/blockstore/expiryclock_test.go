package blockstore

import (
	"testing"
	"time"
)

// TestExpiryClockHoldsForwardJump: a wall clock that jumps forward is
// followed at twice the time elapsed, so a session receipted for an hour
// outlives a jump of a day; a clock that goes back holds expiry; small
// steps (NTP) are followed at once.
func TestExpiryClockHoldsForwardJump(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	start := time.Now().Round(0)
	cs := putSession(t, s, 900, 1, start.Add(time.Hour))
	c := expiryClock{at: start}

	c.advance(start.Add(time.Minute+5*time.Second), time.Minute) // a small step
	if !c.at.Equal(start.Add(time.Minute+5*time.Second)) || c.held {
		t.Fatalf("small step: at %v held %v", c.at.Sub(start), c.held)
	}
	at := c.at
	c.advance(start.Add(24*time.Hour), time.Minute) // a jump of a day
	if !c.held || !c.at.Equal(at.Add(2*time.Minute)) {
		t.Fatalf("jump: at %v held %v", c.at.Sub(start), c.held)
	}
	if _, err := s.ExpireSessions(c.at); err != nil {
		t.Fatal(err)
	}
	if heldOf(t, s, cs) != 1 {
		t.Fatal("a session receipted for an hour ended by a jump of a day")
	}
	at = c.at
	c.advance(start.Add(-time.Hour), time.Minute) // corrected, and then some
	if !c.at.Equal(at) {
		t.Fatalf("the clock went back: %v", c.at.Sub(start))
	}
	c.advance(at.Add(time.Minute), time.Minute) // the wall clock caught up
	if c.held || !c.at.Equal(at.Add(time.Minute)) {
		t.Fatalf("caught up: at %v held %v", c.at.Sub(start), c.held)
	}
}

// TestExpiryClockPersisted: the clock's time outlives a restart, so a
// wall clock behind it holds expiry.
func TestExpiryClockPersisted(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ahead := time.Now().Add(48 * time.Hour).Round(0)
	s.saveExpiryClock(expiryClock{at: ahead})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if c := s.loadExpiryClock(time.Now()); !c.at.Equal(ahead) {
		t.Fatalf("clock after a restart %v, want %v", c.at, ahead)
	}
	fresh := openTest(t, t.TempDir())
	defer fresh.Close()
	wall := time.Now().Round(0)
	if c := fresh.loadExpiryClock(wall); !c.at.Equal(wall) {
		t.Fatalf("a new store's clock %v, want the wall clock %v", c.at, wall)
	}
}
