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
// tail of the pack being written, and a pack rotated out keeps less than
// one record's worth (its allocation stops at the pack limit). Allocation
// is only ever ahead of what is needed: when it fails, or the file system
// cannot (EOPNOTSUPP), writes extend the file as before.

import (
	"errors"
	"syscall"
)

// packAllocStep is how far past its reserved end the pack being written is
// allocated, in one fallocate once less than half of it is left.
const packAllocStep = 64 << 20

// allocExtent is a range of a pack to allocate: [from, to).
type allocExtent struct{ from, to int64 }

// allocAheadLocked returns the range of pack p its writer just reserving
// should allocate, if it is that writer's turn (none under way, less than
// half a step left, direct I/O on: the page cache has no such lock). Call
// with ps.mu held; the writer calls allocate with it.
func (ps *packSet) allocAheadLocked(p *pack) allocExtent {
	if p.df == nil || p.allocating || p.allocStop || ps.noAlloc.Load() || !ps.io.direct.Load() {
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
	return allocExtent{from: p.alloc, to: to}
}

// allocate allocates e of pack p (from allocAheadLocked). A file system
// that cannot turns allocation off for the store; any other failure (a
// full disk) for the pack: its writes extend the file.
func (ps *packSet) allocate(p *pack, e allocExtent) {
	if e.to <= e.from {
		return
	}
	err := allocateFile(p.f, e.from, e.to-e.from)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, errors.ErrUnsupported) {
		ps.noAlloc.Store(true)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p.allocating = false
	// Even a failed call may have allocated part of e (ext4 keeps what it
	// allocated before running out of space): trimActive cuts up to e.to.
	p.alloc = max(p.alloc, e.to)
	if err != nil {
		p.allocStop = true
	}
}

// trimActive cuts the allocated space past the last record off the pack
// being written, for Close once every write has finished: a pack sealed
// keeps no more than its records. A failure leaves zeros no entry names.
func (ps *packSet) trimActive() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.active
	if p == nil || p.pending > 0 || p.alloc <= p.end {
		return
	}
	if err := p.f.Truncate(p.end); err != nil {
		ps.log.Warn("cannot cut the space allocated past the last record off a pack", "pack", packName(p.n), "err", err)
		return
	}
	p.alloc = p.end
}
