package contracts

import (
	"time"

	"github.com/satchel-net/satchel/chain"
)

// This file keeps the Ledger's running counts: each reservation is added
// and removed whole, so the totals per node and per member are never
// recomputed by a scan.

// reservation is the room one contract of member holds until its upload is
// bound or its grant lapses.
type reservation struct {
	size   uint64 // the contract's size: held never exceeds it
	held   uint64 // bytes reserved now
	recv   uint64 // of them, the bytes its session holds on disk (Received, Grow)
	member chain.MemberID
	until  time.Time // the grant's end
	end    time.Time // the contract's end: no grant of it outlasts it
	active time.Time // its CONSIGN or its last chunk
	upload bool      // an upload (object 0): the voucher counts it, it grows
}

// pending is the part of r reserved and not received: what the free disk
// does not show yet.
func (r *reservation) pending() uint64 { return r.held - r.recv }

// usage sums reservations: the bytes held, those of them not received, and
// how many are open.
type usage struct {
	held, voucher, pending uint64
	open                   int
}

func (u *usage) add(r *reservation, sign int) {
	if sign > 0 {
		u.held += r.held
		u.pending += r.pending()
		if r.upload {
			u.voucher += r.held
		}
		u.open++
		return
	}
	u.held -= r.held
	u.pending -= r.pending()
	if r.upload {
		u.voucher -= r.held
	}
	u.open--
}

// add counts r under id. Call with l.mu.
func (l *Ledger) add(id ID, r *reservation) {
	l.reserved[id] = r
	l.use.add(r, 1)
	m := l.members[r.member]
	if m == nil {
		m = &usage{}
		l.members[r.member] = m
	}
	m.add(r, 1)
	l.sweepAt = minNonZero(l.sweepAt, r.nextEvent(l.idle))
}

// remove uncounts r under id. Call with l.mu.
func (l *Ledger) remove(id ID, r *reservation) {
	delete(l.reserved, id)
	l.use.add(r, -1)
	if m := l.members[r.member]; m != nil {
		m.add(r, -1)
		if m.open == 0 {
			delete(l.members, r.member)
		}
	}
}

// change applies f to the reservation of id, keeping the counts. Call
// with l.mu.
func (l *Ledger) change(id ID, r *reservation, f func(*reservation)) {
	l.remove(id, r)
	f(r)
	l.add(id, r)
}

// nextEvent is when r next changes by itself: its grant lapses, or its
// un-received part is released for idleness.
func (r *reservation) nextEvent(idle time.Duration) time.Time {
	if r.upload && r.pending() > 0 {
		if t := r.active.Add(idle); t.Before(r.until) {
			return t
		}
	}
	return r.until
}

// sweepLocked drops the reservations whose grant lapsed and shrinks those
// idle for the Ledger's idle time to what they received. It scans only
// once something may have changed (sweepAt). Call with l.mu.
func (l *Ledger) sweepLocked(now time.Time) {
	if l.sweepAt.IsZero() || now.Before(l.sweepAt) {
		return
	}
	l.sweepAt = time.Time{}
	for id, r := range l.reserved {
		switch {
		case now.After(r.until):
			l.remove(id, r)
		case r.upload && r.pending() > 0 && !now.Before(r.active.Add(l.idle)):
			l.change(id, r, func(r *reservation) { r.held = r.recv })
		default:
			l.sweepAt = minNonZero(l.sweepAt, r.nextEvent(l.idle))
		}
	}
}

func minNonZero(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
