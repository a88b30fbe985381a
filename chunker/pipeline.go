package chunker

import (
	"crypto/sha256"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// job is one chunk buffer travelling through the hashing pool. Buffers are
// recycled, so a pipeline allocates at most window of them per stream.
type job struct {
	buf    []byte
	n      int
	sum    [sha256.Size]byte
	done   chan struct{} // receives once the worker has written sum
	hashed bool          // done has been received
}

func (j *job) data() []byte { return j.buf[:j.n] }

// pipeline hashes chunks on a bounded pool of workers and hands them back in
// submission order. Its owner (a Chunker or Writer) calls it from one
// goroutine; close stops the workers and returns once they have exited.
type pipeline struct {
	chunkSize int
	window    int
	jobs      chan *job
	wg        sync.WaitGroup

	inflight []*job // ring of submitted jobs, oldest at head
	head     int
	count    int
	free     []*job
	closed   bool
}

func newPipeline(c config) *pipeline {
	p := &pipeline{
		chunkSize: c.chunkSize,
		window:    c.window(),
		jobs:      make(chan *job, c.window()),
		inflight:  make([]*job, c.window()),
	}
	p.wg.Add(c.workers)
	for range c.workers {
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				j.sum = sha256.Sum256(j.data())
				j.done <- struct{}{}
			}
		}()
	}
	return p
}

// get returns an empty buffer, reusing a recycled one when possible.
func (p *pipeline) get() *job {
	if n := len(p.free); n > 0 {
		j := p.free[n-1]
		p.free = p.free[:n-1]
		j.n, j.hashed = 0, false
		return j
	}
	return &job{buf: make([]byte, p.chunkSize), done: make(chan struct{}, 1)}
}

// put recycles a buffer the owner no longer needs.
func (p *pipeline) put(j *job) { p.free = append(p.free, j) }

// full reports whether the window is full: pop before the next submit.
func (p *pipeline) full() bool { return p.count == p.window }

// empty reports whether no chunk is in flight.
func (p *pipeline) empty() bool { return p.count == 0 }

// submit queues j for hashing. It never blocks: the window bounds the queue.
func (p *pipeline) submit(j *job) {
	p.inflight[(p.head+p.count)%p.window] = j
	p.count++
	p.jobs <- j
}

// ready reports whether the oldest chunk in flight is hashed, without
// waiting.
func (p *pipeline) ready() bool {
	if p.count == 0 {
		return false
	}
	j := p.inflight[p.head]
	if !j.hashed {
		select {
		case <-j.done:
			j.hashed = true
		default:
		}
	}
	return j.hashed
}

// pop waits for the oldest chunk in flight and returns it with its hash.
func (p *pipeline) pop() *job {
	j := p.inflight[p.head]
	p.inflight[p.head] = nil
	p.head = (p.head + 1) % p.window
	p.count--
	if !j.hashed {
		<-j.done
		j.hashed = true
	}
	return j
}

// close stops the workers and waits for them. Chunks still in flight are
// hashed and dropped. It is idempotent.
func (p *pipeline) close() {
	if p.closed {
		return
	}
	p.closed = true
	close(p.jobs)
	p.wg.Wait()
	p.free, p.inflight = nil, nil
}

// rawCID makes the CIDv1 (raw codec) of a sha2-256 digest.
func rawCID(sum *[sha256.Size]byte) cid.Cid {
	var mh [2 + sha256.Size]byte
	mh[0], mh[1] = multihash.SHA2_256, sha256.Size
	copy(mh[2:], sum[:])
	return cid.NewCidV1(cid.Raw, mh[:])
}

// ChunkCID returns the content ID of a chunk: CIDv1, raw codec, sha2-256.
func ChunkCID(data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	return rawCID(&sum)
}
