package blockstore

// Allocating the pack being written ahead of its records. A direct write
// that ends past the file's size is an extending write, which ext4 (and
// XFS) run one at a time, under the file's exclusive lock, waiting for the
// device: concurrent Puts then queue for the disk one by one, and a stream
// of 1 MiB chunks waits ~1 ms per chunk ahead of it before its own write
// starts. A write into space already allocated (fallocate, which also sets
// the size) takes the lock shared, so writers reach the device together.
//
// Durability is unchanged: a record in allocated space is acknowledged
// after the same fdatasync, which also makes durable the allocation (an
// earlier journal transaction) and the conversion of the space from
// unwritten to written that the write made. What a crash leaves past the
// last record is space that reads as zeros: the scan of a pack not sealed
// (packrecover.go) reads it as a torn tail and cuts it off. Close cuts the
// tail of the pack being written, and rotation that of the pack rotated
// out (trimTail). Allocation is only ever ahead of what is needed: when it
// fails, or the file system cannot (EOPNOTSUPP), writes extend the file as
// before.
//
// Near a full disk, allocating ahead must not take the space others on
// the same file system need, the index first: goleveldb keeps a failed
// journal write's error, and refuses every later write until the store is
// reopened. Each allocation is bounded by the free space less a reserve
// (allocReserve), nothing is allocated below it, and whatever a failed
// allocation took (ext4 keeps the part it allocated before ENOSPC) is
// given back at once.

import (
	"errors"
	"syscall"
)

// packAllocStep is how far past its reserved end the pack being written is
// allocated, in one fallocate once less than half of it is left.
const packAllocStep = 64 << 20

// allocExtent is a range of a pack to allocate, [from, to), and the
// pack's reserved end when it was chosen.
type allocExtent struct{ from, to, end int64 }

// allocReserve is the free space allocating ahead leaves on a file system
// of total bytes: the larger of a step and 1 %.
func allocReserve(total uint64) uint64 { return max(packAllocStep, total/100) }

// allocRetry is how far the records of a pack go past the point where an
// allocation was refused or failed before the next is tried.
const allocRetry = packAllocStep / 2

// allocAheadLocked returns the range of pack p its writer just reserving
// should allocate, if it is that writer's turn (none under way, less than
// half a step left, not refused for the last allocRetry bytes, direct I/O
// on: the page cache has no such lock). Call with ps.mu held; the writer
// calls allocate with it.
func (ps *packSet) allocAheadLocked(p *pack) allocExtent {
	if p.df == nil || p.allocating || p.end < p.allocNext || ps.noAlloc.Load() || !ps.io.direct.Load() {
		return allocExtent{}
	}
	if p.alloc >= p.end+packAllocStep/2 {
		return allocExtent{}
	}
	to := min(p.end+packAllocStep, ps.limit)
	if to <= p.alloc {
		return allocExtent{}
	}
	p.allocating = true
	return allocExtent{from: p.alloc, to: to, end: p.end}
}

// allocate allocates e of pack p (from allocAheadLocked), no further than
// the file system's free space less its reserve. A file system that
// cannot turns allocation off for the store; a refusal or any other
// failure (a full disk) for the pack's next allocRetry bytes, its writes
// extending the file, and what a failed call allocated is given back.
func (ps *packSet) allocate(p *pack, e allocExtent) {
	if !e.valid() {
		return
	}
	to := ps.allocBound(e)
	var err error
	if to > e.from {
		err = allocateFile(p.f, e.from, to-e.from)
	}
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, errors.ErrUnsupported) {
		ps.noAlloc.Store(true)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p.allocating = false
	if err == nil && to > e.from {
		p.alloc = max(p.alloc, to)
	} else {
		p.allocNext = p.end + allocRetry
	}
	switch {
	case err != nil:
		// Even a failed call may have allocated part of the range: cut
		// the file back to its records (every write in flight lies
		// below p.end, and none can be reserved past it while mu is
		// held).
		ps.log.Info("cannot allocate a pack ahead of its records: its writes extend it", "pack", packName(p.n), "err", err)
		ps.cutLocked(p)
	case ps.active != p && !p.gone && p.alloc > p.end:
		ps.cutLocked(p) // rotated out meanwhile: trimTail left it to us
	}
}

// valid reports whether e is a range to allocate.
func (e allocExtent) valid() bool { return e.to > e.from }

// allocBound returns how far e may be allocated: up to e.to, but leaving
// the file system its reserve; not past e's start when the free space is
// unknown, or when less than allocMin is free above the reserve (a
// refusal: see allocRetry).
func (ps *packSet) allocBound(e allocExtent) int64 {
	free, total, err := ps.space()
	if err != nil || free < allocReserve(total)+allocMin {
		return e.from
	}
	// The range below the reserved end is mostly written (allocated)
	// already, or about to be: only what lies past it takes free space.
	room := int64(min(free-allocReserve(total), packAllocStep))
	to := min(e.to, max(e.from, e.end)+room) &^ (ioAlign - 1)
	return max(to, e.from)
}

// allocMin is the least room above the reserve worth allocating ahead.
const allocMin = packAllocStep / 8

// cutLocked truncates pack p to its reserved end, giving back the space
// allocated past its records. Call with mu held: no write can then be
// reserved past the end, and every write in flight lies below it.
func (ps *packSet) cutLocked(p *pack) {
	if ps.cut(p, p.end) {
		p.alloc = min(p.alloc, p.end)
	}
}

// cut truncates pack p to end if its file is larger, reporting whether
// nothing past end is left.
func (ps *packSet) cut(p *pack, end int64) bool {
	st, err := p.f.Stat()
	if err == nil && st.Size() > end {
		err = p.f.Truncate(end)
	}
	if err != nil {
		ps.log.Warn("cannot cut the space allocated past the last record off a pack", "pack", packName(p.n), "err", err)
		return false
	}
	return true
}

// trimActive cuts the allocated space past the last record off the pack
// being written, for Close once every write has finished: a pack sealed
// keeps no more than its records. A failure leaves zeros no entry names.
func (ps *packSet) trimActive() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.active; p != nil && p.alloc > p.end {
		ps.cutLocked(p)
	}
}

// trimTail cuts the allocated space past the last record off pack p, just
// rotated out (at the size limit, or after a failed fdatasync), outside
// the lock: p's end no longer moves and its writes in flight lie below
// it. It holds p open meanwhile.
func (ps *packSet) trimTail(p *pack) {
	ps.mu.Lock()
	// Evicted meanwhile (closed, out of the open map): its files are shut,
	// so there is nothing to cut through; what it kept is less than a record.
	if p.gone || ps.open[p.n] != p || p.allocating || p.alloc <= p.end { // allocate cuts it when done
		ps.mu.Unlock()
		return
	}
	p.refs++
	end := p.end
	ps.mu.Unlock()
	done := ps.cut(p, end)
	ps.mu.Lock()
	if done {
		p.alloc = min(p.alloc, end)
	}
	ps.mu.Unlock()
	ps.release(p)
}

// allocatedAhead returns the bytes allocated past the last record of the
// packs being written: on disk, they are free space the store will fill.
func (ps *packSet) allocatedAhead() uint64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var n int64
	for _, p := range ps.open {
		n += max(p.alloc-p.end, 0)
	}
	return uint64(n)
}

// AllocatedAhead returns the bytes of disk the store holds allocated past
// the last record of the packs being written: the file system counts them
// used, but they are room for the store's next blocks (at most 64 MiB).
func (s *Store) AllocatedAhead() uint64 { return s.packs.allocatedAhead() }
