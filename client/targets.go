package client

import (
	"context"
	"sync"
	"sync/atomic"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chunker"
)

// The pieces an upload moves chunks with: the providers it pushes to
// (targets), the chunks on their way, and the bounded pool of chunk buffers
// that is the upload's memory bound.

// bitset is a growable set of chunk indexes.
type bitset []uint64

func (b bitset) has(i int) bool {
	w := i / 64
	return w < len(b) && b[w]&(1<<(uint(i)%64)) != 0
}

func (b *bitset) set(i int) bool {
	w := i / 64
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	if (*b)[w]&(1<<(uint(i)%64)) != 0 {
		return false
	}
	(*b)[w] |= 1 << (uint(i) % 64)
	return true
}

// target is one provider an upload pushes every chunk to.
type target struct {
	cand candidate

	mu    sync.Mutex
	conn  storeConn
	gen   int // conn generation, so one failure resets the stream once
	held  bitset
	nheld int
	dead  error
	bound bool
	fails int // failed links in a row
	// down is the target's outage while its stream is lost: it is dialled
	// again until the reconnect wait passes (client/reconnect.go).
	down outage
	// moved are the addresses the provider's bucket named when read again
	// during an outage, other than cand's (followBucket): dials and
	// pipeline hops use them. cand is never written, so that it can be
	// read without mu.
	moved []ma.Multiaddr
	// following says a followBucket runs for the target; follow counts it.
	following bool
	follow    sync.WaitGroup
	// givenUpBusy is set when the target answered busy for the whole busy
	// wait: it is reachable, and what it took of the upload goes unused.
	givenUpBusy bool
	// forwarded counts the pipelines in which it signed the chunk with
	// hops after it; fwdLies those in which a hop it reported failed
	// contradicted it (pusher.forwardContradicted). They decide whether
	// it may head pipelines (canHead).
	forwarded, fwdLies int

	queue chan *chunkJob
}

func (t *target) alive() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dead == nil
}

// addrs returns the addresses the provider is dialled at: those its
// bucket named when read again during an outage, else the candidate's.
func (t *target) addrs() []ma.Multiaddr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.moved != nil {
		return t.moved
	}
	return t.cand.addrs
}

func (t *target) has(i int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held.has(i)
}

func (t *target) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nheld
}

// chunkJob is one chunk on its way to one or more targets. Its buffer goes
// back to the pool when the last target is done with it.
type chunkJob struct {
	index int
	info  chunker.ChunkInfo
	data  []byte
	proof chunker.Proof
	// forward is the rest of the pipeline the chunk is passed along after
	// the target whose queue it is in (pipelined replication).
	forward []*target
	// fromHolder says the target whose queue it is in holds the chunk
	// already and is pushed to only to forward it.
	fromHolder bool
	// once says the chunk is tried on the target once, not linkAttempts
	// times: a pipeline head said the target failed for want of disk,
	// which only the target's own answer proves (pipelined).
	once bool
	// parent is the job whose buffer this one shares (one of several
	// pipelines of the chunk); done is counted there.
	parent *chunkJob
	refs   atomic.Int32
	pool   *bufPool
}

func (j *chunkJob) done() {
	if j.parent != nil {
		j.parent.done()
		return
	}
	if j.refs.Add(-1) == 0 && j.pool != nil {
		j.pool.put(j.data)
	}
}

// bufPool hands out at most n chunk buffers: the upload's memory bound.
type bufPool struct {
	size  int
	free  chan []byte
	avail chan struct{}
}

func newBufPool(n, size int) *bufPool {
	p := &bufPool{size: size, free: make(chan []byte, n), avail: make(chan struct{}, n)}
	for range n {
		p.avail <- struct{}{}
	}
	return p
}

// get returns a buffer of the pool's size, waiting while all are in use.
func (p *bufPool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		return b[:p.size], nil
	default:
	}
	select {
	case b := <-p.free:
		return b[:p.size], nil
	case <-p.avail:
		return make([]byte, p.size), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *bufPool) put(b []byte) { p.free <- b }
