package contracts

import (
	"context"
	"fmt"
	"math"
	"time"
)

// This file holds the Ledger's rules: what a new reservation must fit,
// and how an upload's reservation grows with its bytes.

// admitLocked checks that c may be reserved: an open slot for its member
// and the node, its whole size within the room the other reservations
// leave, and its first window within its member's share. old is c's own
// reservation, if any (a repeated CONSIGN), not counted against it. Call
// with l.mu.
func (l *Ledger) admitLocked(c *Contract, v roomView, old *reservation) error {
	if old == nil {
		if m := l.members[c.Member]; m != nil && m.open >= l.perMember {
			return fmt.Errorf("%w: member %d holds %d open uploads on this provider, the most one member may; bind or drop one first (an idle one lapses %v after its last chunk)",
				ErrBusy, c.Member, m.open, l.ttl)
		}
		if l.use.open >= l.maxOpen {
			return fmt.Errorf("%w: this provider holds %d open uploads, the most it keeps; ask again later", ErrBusy, l.use.open)
		}
	}
	var o reservation
	if old != nil {
		o = *old
	}
	voucher := l.use.voucher
	if o.upload {
		voucher -= o.held
	}
	if err := l.roomFor(c, v, voucher, l.use.pending-o.pending(), c.Size, "open contracts"); err != nil {
		return err
	}
	mine := uint64(0)
	if m := l.members[c.Member]; m != nil {
		mine = m.pending - o.pending()
	}
	return l.memberFits(c, v, mine, l.firstWindow(c))
}

// roomFor checks that n more bytes fit beside voucher bytes reserved
// against the voucher (for an upload) and pending bytes reserved and not
// yet on the disk.
func (l *Ledger) roomFor(c *Contract, v roomView, voucher, pending, n uint64, what string) error {
	if c.Object == 0 && (voucher+n < voucher || !v.voucher.Room(1, voucher+n)) {
		return fmt.Errorf("%w: bucket %d voucher: %d of %d bytes used, %d reserved by %s, %d more asked; ask the storage lead to raise its limit",
			ErrNoRoom, l.bucket, v.voucher.SizeUsed, v.voucher.SizeLimit, voucher, what, n)
	}
	if v.hasFree && (v.free < pending || v.free-pending < n) {
		return fmt.Errorf("%w (%d bytes free, %d reserved by %s and not yet received, %d more asked)",
			ErrDiskFull, v.free, pending, what, n)
	}
	return nil
}

// memberFits checks that c's member, holding mine bytes reserved and not
// received under its other reservations, may hold n more: at most
// 1/share of the room the other members leave, or n alone when it holds
// nothing else and n is at most one window (so one honest upload always
// proceeds). Call with l.mu.
func (l *Ledger) memberFits(c *Contract, v roomView, mine, n uint64) error {
	if l.share <= 1 || (mine == 0 && n <= l.firstWindow(c)) {
		return nil
	}
	var u usage
	if m := l.members[c.Member]; m != nil {
		u = *m
	}
	left := uint64(math.MaxUint64)
	if c.Object == 0 {
		left = sub(sub(v.voucher.SizeLimit, v.voucher.SizeUsed), l.use.voucher-u.voucher)
	}
	if v.hasFree {
		left = min(left, sub(v.free, l.use.pending-u.pending))
	}
	if left == math.MaxUint64 {
		return nil
	}
	limit := left / l.share
	if mine+n < mine || mine+n > limit {
		return fmt.Errorf("%w: member %d holds %d bytes reserved and not yet uploaded and asks %d more; one member may hold at most %d (1/%d of the %d bytes the other members' reservations leave); finish, bind or drop its uploads first",
			ErrNoRoom, c.Member, mine, n, limit, l.share, left)
	}
	return nil
}

// RoomGrower is what a Room may also implement to reserve an upload's room
// as its bytes arrive (*Ledger does): Grow is asked, before a chunk is
// taken into the grant's session, with the bytes the session would then
// hold and those it holds on disk.
type RoomGrower interface {
	// Grow makes sure contract id's reservation covers total bytes, those
	// the upload would hold with the chunk asked (stored, agreed to and
	// in flight, and the chunk), reaching ahead for the next, and records
	// that stored of them are on disk: only those no longer count as
	// pending against the free disk, so a chunk in flight or refused
	// keeps its room counted. An error wrapping ErrNoRoom when the room
	// ran out before total, ErrNotFound when no live reservation is held
	// for id.
	Grow(ctx context.Context, id ID, total, stored uint64) error
}

// Grow implements RoomGrower. A reservation with half a window or less
// left ahead of the upload grows to one window ahead (at most the
// contract's size), reading the room first; a growth that does not fit is
// not an error while total still fits what is held (the next chunk tries
// again), and otherwise only total is asked for.
func (l *Ledger) Grow(ctx context.Context, id ID, total, stored uint64) error {
	c, need, err := l.noteReceived(id, total, stored)
	if err != nil || need == 0 {
		return err
	}
	var v roomView
	if err := l.readRoom(ctx, &v); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reserved[id]
	if r == nil || l.now().After(r.until) {
		return fmt.Errorf("%w: no live reservation for contract %s", ErrNotFound, id)
	}
	target := min(r.size, total+l.window)
	if target <= r.held {
		return nil
	}
	gerr := l.growLocked(c, id, r, v, target)
	if gerr == nil || total <= r.held {
		return nil
	}
	if err := l.growLocked(c, id, r, v, total); err != nil {
		return fmt.Errorf("%w; the upload of contract %s stops at %d of %d bytes (what was received stays until its grant lapses)", err, id, r.held, r.size)
	}
	return nil
}

// noteReceived records that stored bytes of id's upload are on disk and
// reports the contract-like view of its reservation and whether it needs
// to grow to cover total, the bytes the upload would hold (need > 0).
// Only stored bytes count as received: total also counts chunks agreed
// to and not stored yet, which the free disk does not show, and a chunk
// refused after it was agreed to never is.
func (l *Ledger) noteReceived(id ID, total, stored uint64) (*Contract, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepLocked(now)
	r := l.reserved[id]
	if r == nil || now.After(r.until) {
		return nil, 0, fmt.Errorf("%w: no live reservation for contract %s", ErrNotFound, id)
	}
	if total > r.size {
		return nil, 0, fmt.Errorf("%w: contract %s is for %d bytes, its upload would hold %d", ErrNoRoom, id, r.size, total)
	}
	l.receivedLocked(id, r, stored, now)
	if r.held == r.size || total+l.window/2 <= r.held {
		return nil, 0, nil
	}
	c := &Contract{ID: id, Member: r.member, Terms: Terms{Size: r.size}}
	if !r.upload {
		c.Object = 1 // any registered object: not counted on the voucher
	}
	return c, min(r.size, total+l.window) - r.held, nil
}

// RoomReceiver is what a Room may also implement to hear when an upload's
// chunk has landed (*Ledger does): Grow, asked before a chunk is taken,
// sees only the chunks stored before it, so without Received the last
// chunk an upload stored would count as pending until the next was asked
// (and an idle upload shrunk to what it received would reserve it again
// when resumed).
type RoomReceiver interface {
	// Received records that stored bytes of contract id's upload are on
	// disk; nothing when no live reservation is held for id.
	Received(id ID, stored uint64)
}

// Received implements RoomReceiver: stored bytes, at most those held,
// no longer count as pending against the free disk, and the upload was
// active now.
func (l *Ledger) Received(id ID, stored uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if r := l.reserved[id]; r != nil && !now.After(r.until) {
		l.receivedLocked(id, r, stored, now)
	}
}

// receivedLocked records that stored bytes of r's upload are on disk at
// now. Received bytes only grow: a late report of fewer changes nothing.
// Call with l.mu.
func (l *Ledger) receivedLocked(id ID, r *reservation, stored uint64, now time.Time) {
	l.change(id, r, func(r *reservation) {
		r.active = now
		r.recv = max(r.recv, min(stored, r.held))
	})
}

// growLocked grows r to target bytes if the room and r's member's share
// take the difference. Call with l.mu.
func (l *Ledger) growLocked(c *Contract, id ID, r *reservation, v roomView, target uint64) error {
	if target <= r.held {
		return nil
	}
	n := target - r.held
	if err := l.roomFor(c, v, l.use.voucher, l.use.pending, n, "open uploads"); err != nil {
		return err
	}
	mine := l.members[r.member].pending - r.pending()
	if err := l.memberFits(c, v, mine, r.pending()+n); err != nil {
		return err
	}
	l.change(id, r, func(r *reservation) { r.held = target })
	return nil
}

// RoomExtender is what a Room may also implement to make a grant's
// reservation slide with its upload (*Ledger does): Extend is asked for
// each chunk a provider takes into the grant's session, so an upload that
// takes longer than one grant TTL, but never pauses that long, keeps its
// room and its session.
type RoomExtender interface {
	// Extend makes contract id's live reservation last until max(its end,
	// now + the grant TTL), no later than the contract's End, and returns
	// its end; false when no live reservation is held for id.
	Extend(id ID) (until time.Time, ok bool)
}

// Extend implements RoomExtender: it slides contract id's reservation,
// while its grant is live, to max(its end, now + the grant TTL), no later
// than the contract's End. It only updates the reservation in memory, so
// it is cheap enough for every chunk. The Ledger keeps nothing on disk:
// after a restart no reservation and no grant is open, the chunks of a
// session the provider no longer counts are refused, and the block store
// removes the session at its expiry, which was never later than its
// grant's end.
func (l *Ledger) Extend(id ID) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reserved[id]
	now := l.now()
	if r == nil || now.After(r.until) {
		return time.Time{}, false
	}
	if u := l.grantEnd(now, r.end); u.After(r.until) {
		r.until = u // the counts do not depend on until
	}
	return r.until, true
}
