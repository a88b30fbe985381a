package distributor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// maxAhead is how many leaves a reader keeps fetched ahead of the one it
// reads (besides that one).
const maxAhead = 2

// objectReader reads an object's content by walking its DAG to the leaf
// under the read position, fetching only the leaves read (and up to
// maxAhead leaves ahead, within end). It is an io.ReadSeeker for
// http.ServeContent. It holds at most 1+maxAhead leaves in memory, and none
// for leaves read from the cache, which are read from their files.
type objectReader struct {
	// mu serialises Read, Seek and Close: http.ServeContent reads a
	// multi-range answer from its own goroutine, which may still run when
	// the handler closes the reader.
	mu   sync.Mutex
	ctx  context.Context
	f    *fetcher
	obj  chain.DataObject
	root cid.Cid
	keep bool
	// slot is the answer's miss slot, taken before any block comes from
	// the network (nil: none, for warming).
	slot *missSlot
	size int64
	pos  int64
	end  int64 // no read-ahead at or past end
	// spans are a multi-range answer's ranges: read-ahead stays within
	// the one read (aheadEnd).
	spans []span

	nodes map[cid.Cid]*dagNode // decoded interior nodes, a few
	cur   *piece
	ahead map[int64]aheadLeaf
	// network counts content bytes read that came from the network.
	network int64
	closed  bool
	// stalled says a write to the client blocked (stall) while the
	// current leaf was sent: the next leaf is loaded with no read-ahead.
	stalled bool
}

// aheadLeaf is a leaf fetched ahead; the reader holds the lease until it
// reads the leaf or gives up on it.
type aheadLeaf struct {
	lf leaf
	cl *lease
}

// piece is the leaf being read: in memory (data), or in its cached block
// file (file.f), given back to the cache after.
type piece struct {
	off, size int64
	data      []byte
	lease     *lease // the hold on data fetched into a pooled buffer
	file      openFile
	cid       cid.Cid
	network   bool
}

// newObjectReader returns a reader of rec's content for an answer that
// fetches blocks not cached under slot.
func newObjectReader(ctx context.Context, f *fetcher, rec *record, keep bool, slot *missSlot) (*objectReader, error) {
	obj := rec.obj
	if !rec.root.Defined() {
		return nil, fmt.Errorf("%w: object %d has content ID %q, not a CID", ErrBadDAG, obj.ID, obj.ContentID)
	}
	return &objectReader{ctx: ctx, f: f, obj: obj, root: rec.root, keep: keep, slot: slot, size: int64(obj.Size), end: int64(obj.Size)}, nil
}

// start returns a lease on block c of the object: a cache hit, or the
// fetch from the network, started (or joined) once the answer holds its
// miss slot. The caller drops the lease; an error (the client left while
// waiting for a slot) comes with none.
func (r *objectReader) start(c cid.Cid) (*lease, error) {
	if l := r.f.hit(r.obj, c); l != nil {
		return l, nil
	}
	return r.fetch(c, true)
}

// fetch starts the network fetch of c once the answer holds its miss slot;
// with orCache, a block the cache came to hold meanwhile is read from
// there instead (see fetcher.startFetch).
func (r *objectReader) fetch(c cid.Cid, orCache bool) (*lease, error) {
	if err := r.slot.take(); err != nil {
		return nil, err
	}
	if r.slot != nil {
		r.slot.fetches.Add(1)
	}
	return r.f.startFetch(r.obj, c, r.keep, orCache), nil
}

// block returns a lease on block c once it is there: in the cache (to read
// from there) or fetched from the network (network, blk); the caller drops
// it. An error comes with no lease.
func (r *objectReader) block(c cid.Cid) (*lease, error) {
	l, err := r.start(c)
	if err != nil {
		return nil, err
	}
	return r.await(l)
}

// refetch is block for a caller whose cached copy of c could not be read:
// it skips the cache, whose index may still list the block, and returns a
// lease on the block's bytes fetched from the network.
func (r *objectReader) refetch(c cid.Cid) (*lease, error) {
	l, err := r.fetch(c, false)
	if err != nil {
		return nil, err
	}
	return r.await(l)
}

// await waits for the fetch l as fetcher.wait does. While the fetch
// pauses for busy providers the answer waits on them, not on its share of
// the fetching: it drops its read-ahead and gives back its miss slot if a
// parked token is free (the awaited block holds no memory until it comes,
// then the token bounds it), and takes a slot again once the block came.
func (r *objectReader) await(l *lease) (*lease, error) {
	if l.call.paused == nil || !r.slot.holds() {
		return r.f.wait(r.ctx, l)
	}
	select {
	case <-l.call.done:
	case <-r.ctx.Done():
	case <-l.call.paused:
		r.dropAhead()
		if r.slot.parkKeeping() {
			l, err := r.f.wait(r.ctx, l)
			if err != nil {
				return nil, err
			}
			if err := r.slot.take(); err != nil {
				l.drop()
				return nil, err
			}
			return l, nil
		}
	}
	return r.f.wait(r.ctx, l)
}

// Read implements io.Reader.
func (r *objectReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errors.New("distributor: read after close")
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.cur == nil || r.pos < r.cur.off || r.pos >= r.cur.off+r.cur.size {
		if err := r.load(r.pos); err != nil {
			return 0, err
		}
	}
	c := r.cur
	want := min(int64(len(p)), c.off+c.size-r.pos)
	var n int
	var err error
	if c.file.f != nil {
		n, err = c.file.f.ReadAt(p[:want], r.pos-c.off)
		if err == io.EOF && int64(n) == want {
			err = nil
		}
	} else {
		n = copy(p[:want], c.data[r.pos-c.off:])
	}
	r.pos += int64(n)
	if c.network {
		r.network += int64(n)
	}
	return n, err
}

// fileSpan makes the leaf under the read position current and returns up
// to max bytes from there as a span of its cached block file, positioned at
// the span's start; file is nil when the leaf is in memory (read it then).
// At the end it returns io.EOF.
func (r *objectReader) fileSpan(max int64) (file *os.File, span int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, 0, errors.New("distributor: read after close")
	}
	if r.pos >= r.size {
		return nil, 0, io.EOF
	}
	if r.cur == nil || r.pos < r.cur.off || r.pos >= r.cur.off+r.cur.size {
		if err := r.load(r.pos); err != nil {
			return nil, 0, err
		}
	}
	c := r.cur
	span = min(max, c.off+c.size-r.pos)
	if c.file.f == nil {
		return nil, span, nil
	}
	if c.file.pos != r.pos-c.off {
		if _, err := c.file.f.Seek(r.pos-c.off, io.SeekStart); err != nil {
			c.file.pos = -1
			return nil, 0, err
		}
		c.file.pos = r.pos - c.off
	}
	return c.file.f, span, nil
}

// advance moves the read position past n bytes sent from a file span;
// after an error the file's offset is not known.
func (r *objectReader) advance(n int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pos += n
	if r.cur != nil {
		r.cur.file.pos += n
		if err != nil {
			r.cur.file.pos = -1
		}
		if r.cur.network {
			r.network += n
		}
	}
}

// Seek implements io.Seeker.
func (r *objectReader) Seek(off int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, errors.New("distributor: bad whence")
	}
	if off < 0 {
		return 0, errors.New("distributor: seek before the start")
	}
	r.pos = off
	return off, nil
}

// networkBytes returns the content bytes read so far that came from the
// network.
func (r *objectReader) networkBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.network
}

// Close releases the leaf being read.
func (r *objectReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.release()
	r.dropAhead()
	return nil
}

// release lets go of the leaf being read: its file goes back to the cache,
// its lease is dropped.
func (r *objectReader) release() {
	if c := r.cur; c != nil {
		if c.file.f != nil {
			r.f.cache.release(r.obj.ID, c.cid, c.file)
		}
		c.data = nil
		c.lease.drop()
	}
	r.cur = nil
}

// dropAhead gives up the leaves fetched ahead.
func (r *objectReader) dropAhead() {
	for _, a := range r.ahead {
		a.cl.drop()
	}
	clear(r.ahead)
}

// takeAhead returns the lease on lf fetched ahead, if any, taking it out of
// the read-ahead (the caller drops it).
func (r *objectReader) takeAhead(lf leaf) *lease {
	a, ok := r.ahead[lf.off]
	if !ok {
		return nil
	}
	delete(r.ahead, lf.off)
	if !a.lf.cid.Equals(lf.cid) {
		a.cl.drop()
		return nil
	}
	return a.cl
}

// prefetch starts fetching the leaf under pos, so that a later read there
// does not wait from scratch; none at or past end.
func (r *objectReader) prefetch(pos int64) error {
	if pos < 0 || pos >= r.size || pos >= r.end {
		return nil
	}
	lf, err := r.locate(pos)
	if err != nil {
		return err
	}
	r.startAhead(lf)
	return nil
}

func (r *objectReader) startAhead(lf leaf) {
	if _, ok := r.ahead[lf.off]; ok || lf.isData {
		return
	}
	if len(r.ahead) >= maxAhead+1 {
		r.dropAhead()
	}
	if r.ahead == nil {
		r.ahead = map[int64]aheadLeaf{}
	}
	cl, err := r.start(lf.cid)
	if err != nil {
		return // the client left: the read there reports it
	}
	r.ahead[lf.off] = aheadLeaf{lf: lf, cl: cl}
}

// load makes the leaf under pos the current one, then starts fetching the
// next ones up to maxAhead, within end.
func (r *objectReader) load(pos int64) error {
	r.release()
	lf, err := r.locate(pos)
	if err != nil {
		return err
	}
	pc, err := r.open(lf)
	if err != nil {
		return err
	}
	r.cur = pc
	if r.stalled {
		// Its client reads slower than the providers deliver: leaves
		// fetched ahead would wait in memory (and, for an object not
		// cached, be fetched again after the next stall).
		r.stalled = false
		return nil
	}
	r.fetchAhead(lf.off + lf.size)
	return nil
}

// stall is called when the answer has spent stallAfter blocked writing
// to its client since its last fetch: the client, not the providers, is
// what it waits on, so it gives back its miss slot, and reads no further
// ahead for its next leaf. For an object not cached it keeps the leaves it
// holds (they would be fetched again) if a parked token is free. Else it
// drops them: those read ahead, and the one being sent when that one is in
// memory (a cached object's come back from the cache). The next read
// takes a slot again before it fetches.
func (r *objectReader) stall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.slot.holds() {
		return
	}
	r.stalled = true
	if !r.keep && r.slot.parkKeeping() {
		return
	}
	r.dropAhead()
	if r.cur != nil && r.cur.file.f == nil && r.cur.lease != nil {
		r.release() // the write in progress sends a copy (copyPooled)
	}
	r.slot.park()
}

// readAhead starts fetching the leaves after the current one, up to
// maxAhead within end (a read that loaded the current leaf with no
// read-ahead, the sniff, goes on reading).
func (r *objectReader) readAhead() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil && !r.closed {
		r.fetchAhead(r.cur.off + r.cur.size)
	}
}

// fetchAhead starts fetching up to maxAhead leaves from content byte next,
// within end and the range read (aheadEnd).
func (r *objectReader) fetchAhead(next int64) {
	end := r.aheadEnd(r.pos)
	for range maxAhead {
		if next >= end || next >= r.size {
			break
		}
		nl, err := r.locate(next)
		if err != nil {
			break // the read there will report it
		}
		r.startAhead(nl)
		next = nl.off + nl.size
	}
}

// open waits for leaf lf and returns it ready to read: a cached leaf is
// read from its block file, kept open by the cache between requests; a
// fetched one from memory, under a lease the piece holds.
func (r *objectReader) open(lf leaf) (*piece, error) {
	if lf.isData {
		return &piece{off: lf.off, size: lf.size, data: lf.inline}, nil
	}
	cl := r.takeAhead(lf) // held here from now on: dropped or handed to the piece
	if pc := r.cached(lf); pc != nil {
		cl.drop()
		return pc, nil
	}
	var err error
	if cl == nil {
		if cl, err = r.start(lf.cid); err != nil {
			return nil, err
		}
	}
	if cl, err = r.await(cl); err != nil {
		return nil, err
	}
	if !cl.network {
		cl.drop()
		if pc := r.cached(lf); pc != nil {
			return pc, nil
		}
		// The cached file went away or failed its check: fetch again,
		// past the cache, whose index may still list it.
		again, err := r.refetch(lf.cid)
		if err != nil {
			return nil, err
		}
		cl = again
	}
	if int64(len(cl.blk.Data)) != lf.size {
		n := len(cl.blk.Data)
		cl.drop()
		return nil, fmt.Errorf("%w: block %s of object %d holds %d bytes, its parent says %d", ErrBadDAG, lf.cid, r.obj.ID, n, lf.size)
	}
	return &piece{off: lf.off, size: lf.size, data: cl.blk.Data, lease: cl, network: true}, nil
}

// cached returns leaf lf as its open block file when the cache holds it
// and the file passed its check (cache.open): nothing of a bad file is
// read, also when an answer already sent the leaves before it.
func (r *objectReader) cached(lf leaf) *piece {
	f, size, ok := r.f.cache.open(r.obj.ID, lf.cid)
	if !ok {
		return nil
	}
	if size != lf.size {
		_ = f.f.Close()
		return nil
	}
	return &piece{off: lf.off, size: lf.size, file: f, cid: lf.cid}
}

// node returns the decoded interior node c.
func (r *objectReader) node(c cid.Cid) (*dagNode, error) {
	if n, ok := r.nodes[c]; ok {
		return n, nil
	}
	if n := r.f.node(c); n != nil {
		r.remember(c, n)
		return n, nil
	}
	b, l, err := r.blockBytes(c)
	if err != nil {
		return nil, err
	}
	n, err := decodeNode(c, b)
	l.drop() // n may alias b: safe, a node's bytes are its own (copied in fetcher.fetch)
	if err != nil {
		return nil, err
	}
	r.f.keepNode(c, n)
	r.remember(c, n)
	return n, nil
}

// remember keeps decoded node c for this reader's next walks.
func (r *objectReader) remember(c cid.Cid, n *dagNode) {
	if len(r.nodes) >= 2*maxDAGDepth {
		clear(r.nodes)
	}
	if r.nodes == nil {
		r.nodes = map[cid.Cid]*dagNode{}
	}
	r.nodes[c] = n
}

// locate returns the leaf holding content byte pos.
func (r *objectReader) locate(pos int64) (leaf, error) {
	c, off, size := r.root, int64(0), r.size
	for depth := 0; ; depth++ {
		if depth > maxDAGDepth {
			return leaf{}, fmt.Errorf("%w: object %d is deeper than %d levels", ErrBadDAG, r.obj.ID, maxDAGDepth)
		}
		switch c.Type() {
		case cid.Raw:
			return leaf{cid: c, off: off, size: size}, nil
		case cid.DagProtobuf:
		default:
			return leaf{}, fmt.Errorf("%w: block %s has codec %#x; Satchel reads raw and dag-pb blocks", ErrBadDAG, c, c.Type())
		}
		n, err := r.node(c)
		if err != nil {
			return leaf{}, err
		}
		if depth == 0 && !n.leaf && int64(n.fsize) != r.size {
			return leaf{}, fmt.Errorf("%w: object %d is %d bytes on chain, its root says %d", ErrBadDAG, r.obj.ID, r.size, n.fsize)
		}
		if n.leaf {
			if int64(len(n.data)) != size {
				return leaf{}, fmt.Errorf("%w: node %s holds %d bytes, expected %d", ErrBadDAG, c, len(n.data), size)
			}
			return leaf{off: off, size: size, inline: n.data, isData: true}, nil
		}
		next := false
		p := off
		for i, l := range n.links {
			s := int64(n.sizes[i])
			if pos >= p && pos < p+s {
				c, off, size, next = l, p, s, true
				break
			}
			p += s
		}
		if !next {
			return leaf{}, fmt.Errorf("%w: no link of node %s covers byte %d of object %d", ErrBadDAG, c, pos, r.obj.ID)
		}
	}
}
