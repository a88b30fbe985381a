package distributor

import (
	"sync"

	"github.com/satchel-net/satchel/protocol/fetch"
)

// call is one block fetch; done closes when blk or err is set.
//
// A fetched leaf's bytes (blk.Data) lie in the block source's pooled frame
// buffer, which the next frame read reuses once it is released: a request
// still reading it would then send another block's bytes. So the buffer
// goes back only when nothing can read it any more. Every holder counts in
// refs: the fetch itself (it writes the block to the cache after waking the
// waiters) and each lease handed out by fetcher.startFetch. The last to let
// go releases the buffer. Leases are taken only while the call is in
// fetcher.calls (under fetcher.mu), and the fetch takes it out there before
// letting go, so no lease can be taken after refs reached zero.
type call struct {
	done chan struct{}
	// paused closes when the fetch first pauses, every provider holding
	// the block busy (nil for a cache hit); pause closes it once.
	paused    chan struct{}
	pauseOnce sync.Once
	blk       fetch.Block // a fetched block (its bytes and their buffer)
	network   bool        // fetched; else a cache hit, to read from the cache
	err       error

	refs int // under fetcher.mu: holds of the fetch and the leases
}

// lease is one holder's hold on a call: the call's bytes stay valid until
// the lease is dropped. Whoever gets a lease (objectReader.start,
// objectReader.block) drops it once done with the data, on every path. A
// lease has one holder at a time; handing it on hands on the duty to drop
// it. A dropped lease no longer reaches its call, so a use of the lease
// after drop fails loudly (a nil dereference). That guards only the lease:
// a copy of its data slice (piece.data, the b blockBytes returns) reads
// whatever block the buffer holds next, so no copy may outlive the lease it
// came under.
type lease struct {
	*call
	f *fetcher
}

// drop lets go of the lease. Dropping it again, or a nil lease, does
// nothing.
func (l *lease) drop() {
	if l == nil || l.call == nil {
		return
	}
	cl := l.call
	l.call = nil
	if !cl.network {
		return // a cache hit's call is its lease's alone and holds no buffer
	}
	l.f.mu.Lock()
	blk := l.f.unrefLocked(cl)
	l.f.mu.Unlock()
	blk.Release()
}

// unrefLocked drops one hold on cl (under f.mu) and, when it was the last,
// returns the buffer for the caller to release once unlocked.
func (f *fetcher) unrefLocked(cl *call) fetch.Block {
	if cl.refs--; cl.refs > 0 {
		return fetch.Block{}
	}
	blk := cl.blk
	// Nothing holds the call: its bytes are gone with the buffer.
	cl.blk = fetch.Block{}
	return blk
}

// closedDone is the done of a call complete when made (a cache hit).
var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// pause says the fetch waits for busy providers.
func (c *call) pause() { c.pauseOnce.Do(func() { close(c.paused) }) }
