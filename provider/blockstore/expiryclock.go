package blockstore

// The clock background session expiry goes by. The wall clock can jump
// (a bad NTP answer, an RTC reset, an operator's typo): followed blindly, a
// jump of days forward would end receipted upload sessions days early and
// delete their chunks. The time the store last went by is persisted, and
// a wall clock found ahead of it by more than the time elapsed (as the
// monotonic clock counts it) plus clockJumpBound is followed only at twice
// the elapsed time: a restart after downtime catches up in as long again,
// and a wrong clock corrected within d ends sessions at most d early.

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// clockJumpBound is how far the wall clock may run ahead of the time
// elapsed between two expiry passes before expiry stops following it.
const clockJumpBound = 10 * time.Minute

// clockKey holds the expiry clock's time, unix nanoseconds.
var clockKey = []byte{pMeta, 'c', 'l', 'o', 'c', 'k'}

// expiryClock is the time session expiry goes by.
type expiryClock struct {
	// at is the time expiry goes by (no monotonic reading).
	at time.Time
	// held is set while at is held behind the wall clock.
	held bool
}

// advance moves the clock on, at wall clock time wall, elapsed after the
// last advance by the monotonic clock. It never goes back: a wall clock
// behind at holds expiry until it catches up.
func (c *expiryClock) advance(wall time.Time, elapsed time.Duration) {
	wall = wall.Round(0)
	switch {
	case !wall.After(c.at):
	case wall.Sub(c.at) <= elapsed+clockJumpBound:
		c.at, c.held = wall, false
	default:
		c.at, c.held = c.at.Add(2*elapsed), true
	}
}

// loadExpiryClock returns the expiry clock as the index last kept it, or
// at wall if it kept none.
func (s *Store) loadExpiryClock(wall time.Time) expiryClock {
	v, err := s.db.Get(clockKey, nil)
	switch {
	case err == nil && len(v) == 8:
		return expiryClock{at: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
	case err != nil && !errors.Is(err, leveldb.ErrNotFound):
		s.log.Warn("cannot read the session expiry clock: starting from the wall clock", "err", err)
	}
	return expiryClock{at: wall.Round(0)}
}

// saveExpiryClock keeps the clock's time in the index. Not synced: a time
// lost to a power loss is an earlier one, which only holds expiry back.
func (s *Store) saveExpiryClock(c expiryClock) {
	var b leveldb.Batch
	b.Put(clockKey, binary.BigEndian.AppendUint64(nil, uint64(c.at.UnixNano())))
	if err := s.writeIndex(&b, false); err != nil {
		s.log.Warn("cannot keep the session expiry clock", "err", err)
	}
}
