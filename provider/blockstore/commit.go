package blockstore

import (
	"sync"
	"time"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// groupCommit writes the index batches of concurrent session adds as one
// synced write: every chunk an upload stores must be durable in the index
// before the provider acknowledges it, and one fsync per chunk, taken one at
// a time, caps a stream at a few hundred chunks a second. Batches are queued
// in the order their writers computed them (under sessMu) and written in
// that order, merged, by whichever waiter finds no write under way.
//
// A session's record (bag, expiry, byte count) is read, changed and
// rewritten by every add, so the latest queued record of each session is
// kept here until it is written: the next add builds on it rather than on
// the older one in the index.
type groupCommit struct {
	write func(b *leveldb.Batch, sync bool) error

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*pendingWrite
	writing bool
	records map[string]*pendingRecord
	// failed is the first write error: later batches were built on the
	// records of the failed ones, so none is written after it.
	failed error
}

// pendingWrite is a queued batch and, once written, its outcome.
type pendingWrite struct {
	batch   *leveldb.Batch
	session string
	done    bool
	err     error
}

// pendingRecord is a session record queued but not yet written.
type pendingRecord struct {
	bag     string
	expiry  time.Time
	total   uint64
	writers int
}

func newGroupCommit(write func(b *leveldb.Batch, sync bool) error) *groupCommit {
	g := &groupCommit{write: write, records: map[string]*pendingRecord{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// err returns the write error that stopped the group commits, if any.
func (g *groupCommit) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

// clearNoSpace lets writes go on after a failed one, if it failed for lack
// of space (the index is mended: see mendIndex) and nothing is queued or
// being written: the batches built on the failed ones have failed too,
// and the next add builds on the index.
func (g *groupCommit) clearNoSpace() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil && fsutil.NoSpace(g.failed) && !g.writing && len(g.queue) == 0 {
		g.failed = nil
	}
}

// record returns the latest queued record of session id, if one waits.
func (g *groupCommit) record(id []byte) (bag string, expiry time.Time, total uint64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.records[string(id)]
	if !ok {
		return "", time.Time{}, 0, false
	}
	return r.bag, r.expiry, r.total, true
}

// enqueue queues b, which writes session id's record as bag, expiry and
// total. Call it under sessMu, in the order the batches must be written.
func (g *groupCommit) enqueue(b *leveldb.Batch, id []byte, bag string, expiry time.Time, total uint64) *pendingWrite {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.records[string(id)]
	if r == nil {
		r = &pendingRecord{}
		g.records[string(id)] = r
	}
	r.bag, r.expiry, r.total = bag, expiry, total
	r.writers++
	p := &pendingWrite{batch: b, session: string(id)}
	g.queue = append(g.queue, p)
	return p
}

// wait returns once p is durable in the index, writing it (and everything
// queued with it) itself if no other waiter is writing.
func (g *groupCommit) wait(p *pendingWrite) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !p.done {
		if g.writing {
			g.cond.Wait()
			continue
		}
		g.writeQueuedLocked()
	}
	return p.err
}

// flush writes everything queued. Call it under sessMu, so nothing is
// queued meanwhile, before reading or writing index entries an add changes.
func (g *groupCommit) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.writing || len(g.queue) > 0 {
		if g.writing {
			g.cond.Wait()
			continue
		}
		g.writeQueuedLocked()
	}
}

// writeQueuedLocked writes the queue as one synced batch. Call with mu held
// and no write under way; it releases mu while writing.
func (g *groupCommit) writeQueuedLocked() {
	batch := g.queue
	g.queue = nil
	g.writing = true
	err := g.failed
	g.mu.Unlock()
	if err == nil {
		merged := batch[0].batch
		if len(batch) > 1 {
			merged = new(leveldb.Batch)
			for _, p := range batch {
				_ = p.batch.Replay(merged) // a batch built in memory always replays
			}
		}
		err = g.write(merged, true)
	}
	g.mu.Lock()
	if err != nil && g.failed == nil {
		g.failed = err
	}
	for _, p := range batch {
		p.done, p.err = true, err
		if r := g.records[p.session]; r != nil {
			if r.writers--; r.writers == 0 {
				delete(g.records, p.session)
			}
		}
	}
	g.writing = false
	g.cond.Broadcast()
}
