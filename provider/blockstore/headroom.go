package blockstore

// Headroom for the index. The packs and the index (goleveldb) share a file
// system, and goleveldb keeps the first error of a journal write: once a
// pack write took the disk's last blocks and the index's journal failed,
// every later index write would fail too, deletions included, until the
// store is reopened. So a record is written only while the file system
// keeps IndexReserve free after it; a Put refused for it fails with an
// error wrapping ENOSPC (what the provider answers with no_space) and
// leaves the index untouched. Index writes, deletions among them, are
// never held back: they are what the reserve is for.
//
// The room for records is the free space, read with statfs, plus what is
// allocated ahead of the packs being written (allocating ahead stops above
// the reserve, so only records reach it). It is kept, each record taken
// off it, and read again once refreshBytes were written or refreshAge
// passed, and at every record once less than nearReserves reserves are free:
// a disk filled by something else is seen in time, one freed at once.

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// IndexReserve is the free space the store's records leave on its file
// system for the index: no block is written into it, so it is not free
// space for blocks. goleveldb writes its journal up to the write buffer (4 MiB)
// before it turns it into a level-0 table (up to another 4 MiB); a table
// compaction writes its output, at most 25 tables of 2 MiB (the expansion
// limit), before it deletes its inputs: ~58 MiB at once at the worst, with
// the manifest. It is also at most allocReserve, so allocating ahead never
// takes it.
const IndexReserve = packAllocStep

const (
	// refreshBytes and refreshAge bound how stale the free space kept is.
	refreshBytes = 32 << 20
	refreshAge   = time.Second
	// nearReserves is how little free space, in reserves, makes it read at
	// every record.
	nearReserves = 4
)

// headroom keeps the free space of the packs' file system for the check
// of each record (room).
type headroom struct {
	space func() (room, total uint64, err error)
	now   func() time.Time

	mu      sync.Mutex
	free    int64 // room at the last read, less what was written since
	written int64 // since the last read
	read    time.Time
	known   bool
}

func newHeadroom(space func() (room, total uint64, err error)) *headroom {
	return &headroom{space: space, now: time.Now}
}

// take checks that n more bytes leave the file system its reserve and
// counts them written, or returns an error wrapping ENOSPC. Where the free
// space cannot be read, nothing is refused.
func (h *headroom) take(n int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.known || h.written >= refreshBytes || h.free-n < nearReserves*IndexReserve ||
		h.now().Sub(h.read) >= refreshAge {
		h.refreshLocked()
	}
	if !h.known {
		return nil
	}
	if h.free-n < IndexReserve {
		return fmt.Errorf("%w: %d bytes free, a record of %d would leave less than the %d kept for the index",
			syscall.ENOSPC, max(h.free, 0), n, IndexReserve)
	}
	h.free -= n
	h.written += n
	return nil
}

// refreshLocked reads the free space again. Call with mu held.
func (h *headroom) refreshLocked() {
	free, _, err := h.space()
	h.known = err == nil
	h.free = int64(min(free, 1<<62))
	h.written = 0
	h.read = h.now()
}

// roomSpace is the space records may take: the file system's free space
// and what is allocated ahead of the packs being written (counted used,
// but filled by the next records), and its total.
func (ps *packSet) roomSpace() (room, total uint64, err error) {
	free, total, err := ps.space()
	if err != nil {
		return 0, 0, err
	}
	return free + ps.allocatedAhead(), total, nil
}

// roomFor checks that a record of n bytes leaves the index its reserve
// (headroom). Refused, it gives back the space allocated ahead of the pack
// being written, which the file system counts used, for the index.
func (ps *packSet) roomFor(n int64) error {
	err := ps.room.take(n)
	if err != nil {
		ps.giveBackAhead()
	}
	return err
}

// giveBackAhead cuts the space allocated past the last record off the pack
// being written.
func (ps *packSet) giveBackAhead() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.active; p != nil && !p.allocating && p.alloc > p.end {
		ps.cutLocked(p)
	}
}
