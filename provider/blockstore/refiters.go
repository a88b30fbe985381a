package blockstore

// A pool of index iterators over the object references (r<cid><obj>), for
// the look-ups a provider makes on every fetch (ObjectsOf,
// HasObjectWithBlock). Making a goleveldb iterator costs about as much as
// the seek it is made for (a merged iterator over the memtables and every
// table, a finalizer): reusing one halves the look-up.
//
// An iterator sees the index as it was when made (its sequence number and
// version are fixed), so one is lent only while no object reference has
// been written since it was made: PutManifest and DeleteObject bump gen
// after their write, before they return. An iterator also pins the
// version it was made at (its tables, kept on disk after a compaction
// replaces them, and its memtables): none is pooled more than maxAge, nor
// after Close.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// refItersMax bounds the iterators pooled: about the look-ups running at
// once.
const refItersMax = 8

type refIters struct {
	db *leveldb.DB
	// gen counts the writes of object references.
	gen    atomic.Uint64
	maxAge time.Duration

	mu     sync.Mutex
	free   []refIter
	timer  *time.Timer // sweeps the pool while it holds iterators
	closed bool
}

// refIter is a pooled iterator, made when gen was gen.
type refIter struct {
	it   iterator.Iterator
	gen  uint64
	born time.Time
}

func newRefIters(db *leveldb.DB) *refIters { return &refIters{db: db, maxAge: time.Second} }

// get lends an iterator over the object references that sees every write
// of them that returned before get was called.
func (p *refIters) get() refIter {
	gen := p.gen.Load()
	p.mu.Lock()
	for n := len(p.free); n > 0; n = len(p.free) {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		if r.gen == gen {
			p.mu.Unlock()
			return r
		}
		r.it.Release() // made before a write of references
	}
	p.mu.Unlock()
	// gen is read before the iterator is made: it sees at least that.
	return refIter{it: p.db.NewIterator(util.BytesPrefix([]byte{pObjectRef}), nil), gen: gen, born: time.Now()}
}

// put hands back an iterator get lent: pooled if still current, young
// enough and unfailed, released if not.
func (p *refIters) put(r refIter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.free) >= refItersMax || r.gen != p.gen.Load() ||
		r.it.Error() != nil || time.Since(r.born) >= p.maxAge {
		r.it.Release()
		return
	}
	p.free = append(p.free, r)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.maxAge, func() { p.sweep(time.Now()) })
	}
}

// sweep releases the pooled iterators made maxAge or more before now, so
// an idle pool pins no old version for long, and sweeps again later while
// any is left.
func (p *refIters) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.free[:0]
	for _, r := range p.free {
		if now.Sub(r.born) >= p.maxAge {
			r.it.Release()
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.free[len(kept):])
	p.free = kept
	if p.timer != nil {
		if len(p.free) > 0 && !p.closed {
			p.timer.Reset(p.maxAge)
		} else {
			p.timer.Stop()
			p.timer = nil
		}
	}
}

// written marks a write of object references done: no iterator made
// before it is lent again. Call it after the write, before returning.
func (p *refIters) written() {
	p.gen.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.free {
		r.it.Release()
	}
	clear(p.free)
	p.free = p.free[:0]
}

// close releases the pooled iterators and pools none from now on. Call it
// before closing the index.
func (p *refIters) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, r := range p.free {
		r.it.Release()
	}
	p.free = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}
