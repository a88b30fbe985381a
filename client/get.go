package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// Ref names content to read: a data object (by bag and ID) or a content ID.
type Ref struct {
	// Bag is the object's bag. For an object it is looked up when empty
	// (in the chain's object-ID index); for a CID it says whose providers to ask
	// (empty: every storage provider the chain names).
	Bag chain.BagID
	// Object is the data object's ID, used when HasObject is set.
	Object    chain.ObjectID
	HasObject bool
	// CID is the content ID, used when HasObject is not set.
	CID cid.Cid
}

// ObjectRef names data object id of bag.
func ObjectRef(bag chain.BagID, id chain.ObjectID) Ref {
	return Ref{Bag: bag, Object: id, HasObject: true}
}

// CIDRef names content by its content ID; bag, when not empty, says whose
// providers to ask.
func CIDRef(c cid.Cid, bag chain.BagID) Ref { return Ref{Bag: bag, CID: c} }

// ParseRef parses what a user names content by: a decimal object ID or a
// CID. bag may be empty.
func ParseRef(s string, bag chain.BagID) (Ref, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		id, err := chain.ParseObjectID(s)
		if err != nil {
			return Ref{}, err
		}
		return ObjectRef(bag, id), nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%q is neither an object ID nor a CID: %w", s, err)
	}
	return CIDRef(c, bag), nil
}

// String returns the reference as a user writes it.
func (r Ref) String() string {
	if r.HasObject {
		if r.Bag != "" {
			return fmt.Sprintf("object %d of bag %s", r.Object, r.Bag)
		}
		return fmt.Sprintf("object %d", r.Object)
	}
	return r.CID.String()
}

// Reader reads one object from its providers. It is an io.WriterTo for the
// whole object and an io.ReaderAt for ranges; both fetch chunks in parallel
// from several providers, fastest first, verify every block against its CID,
// skip providers that fail or send wrong bytes, and write in order with
// memory bounded by the fetch window. The context given to Open bounds every
// read. A Reader is safe for concurrent use; Close releases it.
type Reader struct {
	c     *Client
	ctx   context.Context
	ref   Ref
	bag   chain.BagID
	obj   *chain.DataObject
	root  cid.Cid
	block []byte // the root block
	size  int64
	srcs  *sources
	o     getOptions

	mu     sync.Mutex
	closed bool
	kept   []cachedLeaf // the chunks ReadAt keeps: the last read and those read ahead (readat.go)
	next   int64        // where the last ReadAt ended; -1 before the first
	reads  int          // reads in progress (under mu): the last to end after Close ends the Reader
	once   sync.Once
}

// Open resolves ref (through the chain for an object ID), finds the
// providers that may hold it, and reads its root block. Close the Reader
// when done: Client.Close waits for open Readers.
func (c *Client) Open(ctx context.Context, ref Ref, opts ...GetOption) (_ *Reader, err error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.end()
		}
	}()
	o, err := getOpts(opts)
	if err != nil {
		return nil, err
	}
	r := &Reader{c: c, ctx: ctx, ref: ref, o: o, bag: ref.Bag, next: -1}
	// What a download reads of the chain (the object's content ID, whom to
	// ask) does not change once written: a block-old answer serves, and
	// proven reads need not wait for the next block (up to a second).
	cctx := rpc.AcceptLag(ctx)
	if ref.HasObject {
		obj, err := c.findObject(cctx, ref)
		if err != nil {
			return nil, err
		}
		r.obj, r.bag = &obj, obj.Bag
		if r.root, err = cid.Decode(obj.ContentID); err != nil {
			return nil, fmt.Errorf("object %d of bag %s has content ID %q, which is not a CID: %w", obj.ID, obj.Bag, obj.ContentID, err)
		}
	} else {
		if !ref.CID.Defined() {
			return nil, errors.New("client: empty reference")
		}
		r.root = ref.CID
	}
	if err := r.openSources(ctx, cctx); err != nil {
		return nil, err
	}
	if r.block, err = r.srcs.get(ctx, r.root, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.describe(), err)
	}
	if r.size, err = rootSize(r.root, r.block); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.describe(), err)
	}
	if r.obj != nil && uint64(r.size) != r.obj.Size {
		return nil, fmt.Errorf("read %s: its DAG holds %d bytes but the chain says %d", r.describe(), r.size, r.obj.Size)
	}
	return r, nil
}

// openSources finds the providers to read from (connecting to them; cctx
// is ctx for chain reads a block old may answer) and sets r.srcs. When
// none is reached it reads their addresses again after the next block;
// when some are, it leaves that to the first read that needs it.
func (r *Reader) openSources(ctx, cctx context.Context) error {
	c := r.c
	peers, failed, loc, err := c.readSources(cctx, r.bag, r.o.peers)
	if err != nil {
		return err
	}
	later := loc != nil && len(loc.unreached) > 0
	if len(peers) == 0 && later {
		// None reached: the addresses read may be a block old.
		later = false
		more, err := c.reachAgain(ctx, loc)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			c.log.Debug("providers not reached again", "bag", r.bag, "err", err)
		}
		if len(more) == 0 {
			return reachNote(&NoProviderError{Bag: r.bag, Need: 1, Tried: failed, Op: "download"}, err)
		}
		peers = more
		failed = slices.DeleteFunc(failed, func(e PeerError) bool { return slices.Contains(more, e.Peer) })
	}
	if len(peers) == 0 {
		return &NoProviderError{Bag: r.bag, Need: 1, Tried: failed, Op: "download"}
	}
	peers = c.rankByHave(ctx, peers, r.root, len(r.o.peers))
	r.srcs = newSources(c, r.bag, peers)
	r.srcs.tried = failed
	if later {
		// A provider not reached may be one restarted on a new port, which
		// a read of its addresses a block old does not know yet: read them
		// again should a block have no other source.
		r.srcs.reachLater(func(ctx context.Context) ([]peer.ID, error) {
			more, err := c.reachAgain(ctx, loc)
			if err != nil {
				c.log.Debug("providers not reached again", "bag", r.bag, "err", err)
			}
			return more, err
		})
	}
	return nil
}

func (r *Reader) describe() string {
	if r.obj != nil {
		return fmt.Sprintf("object %d of bag %s (%s)", r.obj.ID, r.obj.Bag, r.root)
	}
	if r.bag != "" {
		return fmt.Sprintf("%s in bag %s", r.root, r.bag)
	}
	return r.root.String()
}

// objectFinder finds an object by its ID alone, in one read of the chain's
// object-ID index. *chain.Client has it; a Chain without it is searched bag
// by bag.
type objectFinder interface {
	ObjectByID(ctx context.Context, id chain.ObjectID) (chain.DataObject, error)
}

// findObject looks an object up on chain. Without a bag it asks the chain's
// object-ID index (object IDs are global, so at most one bag holds it): one
// proven read, not one per bag.
func (c *Client) findObject(ctx context.Context, ref Ref) (chain.DataObject, error) {
	if ref.Bag != "" {
		obj, err := c.chain.DataObject(ctx, ref.Bag, ref.Object)
		if errors.Is(err, chain.ErrObjectNotFound) {
			// The chain answers an object of a bag that does not exist
			// as not found: say the bag is missing (chain.ErrBagNotFound),
			// which is what the caller has to fix.
			if _, berr := c.chain.Bag(ctx, ref.Bag); errors.Is(berr, chain.ErrBagNotFound) {
				return obj, fmt.Errorf("look up object %d: %w (so %w)", ref.Object, berr, err)
			}
		}
		if err != nil {
			return obj, explainChain(fmt.Sprintf("look up object %d", ref.Object), ref.Bag, err)
		}
		return obj, nil
	}
	if f, ok := c.chain.(objectFinder); ok {
		obj, err := f.ObjectByID(ctx, ref.Object)
		switch {
		case err == nil && obj.ID != ref.Object:
			return chain.DataObject{}, fmt.Errorf("look up object %d: the chain answered object %d", ref.Object, obj.ID)
		case err == nil:
			return obj, nil
		case errors.Is(err, chain.ErrObjectNotFound):
			// The index holds every object of this chain: final.
			return chain.DataObject{}, chain.Errorf(chain.ErrObjectNotFound, "data object %d is in no bag", ref.Object)
		case ctx.Err() != nil:
			return chain.DataObject{}, fmt.Errorf("look up object %d: %w", ref.Object, err)
		}
		// Any other answer: a chain started before the index (an object
		// registered then is not in it), or a node older than the query
		// (which does not know it, or whose bare answer fails the proof).
		// Scan every bag as before, so old devnets and nodes keep
		// working: the scan's reads are proven too, so a lying node only
		// makes it slower.
		c.log.Debug("object index unavailable; scanning every bag", "object", ref.Object, "err", err)
	}
	return c.scanBags(ctx, ref.Object)
}

// scanBags finds an object by asking every bag that holds objects for it:
// a read per bag.
func (c *Client) scanBags(ctx context.Context, id chain.ObjectID) (chain.DataObject, error) {
	bags, err := c.chain.Bags(ctx)
	if err != nil {
		return chain.DataObject{}, fmt.Errorf("look up object %d: list bags: %w", id, err)
	}
	for _, b := range bags {
		if b.ObjectsCount == 0 {
			continue
		}
		obj, err := c.chain.DataObject(ctx, b.ID, id)
		if err == nil {
			return obj, nil
		}
		if !errors.Is(err, chain.ErrNotFound) {
			return obj, fmt.Errorf("look up object %d in bag %s: %w", id, b.ID, err)
		}
	}
	return chain.DataObject{}, chain.Errorf(chain.ErrObjectNotFound, "data object %d is in no bag", id)
}

// readSources returns the peers to read from: extra first, then the bag's
// providers (chain and DHT), or every active storage operator when the bag is
// unknown. They are connected. For a bag it also returns what locate found
// (whose unreached providers reachAgain may reach).
func (c *Client) readSources(ctx context.Context, bag chain.BagID, extra []peer.AddrInfo) ([]peer.ID, []PeerError, *located, error) {
	var peers []peer.ID
	var failed []PeerError
	seen := map[peer.ID]bool{c.host.ID(): true}
	lctx, cancel := context.WithTimeout(ctx, c.opts.locate)
	defer cancel()
	var cands []candidate
	for _, ai := range extra {
		cands = append(cands, candidate{peer: ai.ID, addrs: ai.Addrs})
	}
	for i, err := range c.connectAll(lctx, cands) {
		p := cands[i].peer
		if seen[p] {
			continue
		}
		seen[p] = true
		if err != nil {
			failed = append(failed, PeerError{Peer: p, Err: err})
			continue
		}
		peers = append(peers, p)
	}
	if bag != "" {
		loc, err := c.locate(ctx, bag, true)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, cand := range loc.live {
			if !seen[cand.peer] {
				seen[cand.peer] = true
				peers = append(peers, cand.peer)
			}
		}
		failed = append(failed, loc.failures()...)
		return peers, failed, loc, nil
	}
	buckets, err := c.chain.StorageBuckets(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list storage buckets: %w", err)
	}
	cands = cands[:0]
	for _, b := range buckets {
		if b.OperatorStatus != chain.OperatorActive || b.Metadata == nil || b.Metadata.PeerID == "" {
			continue
		}
		p, err := peer.Decode(b.Metadata.PeerID)
		if err != nil || seen[p] {
			continue
		}
		seen[p] = true
		cand := candidate{peer: p, bucket: b.ID, named: true}
		for _, s := range b.Metadata.Multiaddrs {
			if a, err := parseAddr(s); err == nil {
				cand.addrs = append(cand.addrs, a)
			}
		}
		cands = append(cands, cand)
	}
	loc := &located{}
	for i, err := range c.connectAll(lctx, cands) {
		if err != nil {
			failed = append(failed, PeerError{Peer: cands[i].peer, Err: err})
			loc.unreached = append(loc.unreached, cands[i])
			continue
		}
		peers = append(peers, cands[i].peer)
	}
	return peers, failed, loc, nil
}

// rankByHave asks every peer whether it holds the root and puts those that
// do first, keeping the first keep peers (named by the caller) in front.
// Peers that do not answer stay, last: HAVE is a hint, the reads decide.
func (c *Client) rankByHave(ctx context.Context, peers []peer.ID, root cid.Cid, keep int) []peer.ID {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	has := make([]int, len(peers)) // 0 yes, 1 unknown, 2 no
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := c.fetch.Have(hctx, p, []cid.Cid{root})
			switch {
			case err != nil || len(ok) != 1:
				has[i] = 1
			case !ok[0]:
				has[i] = 2
			}
		}()
	}
	wg.Wait()
	out := make([]peer.ID, 0, len(peers))
	out = append(out, peers[:min(keep, len(peers))]...)
	for rank := 0; rank <= 2; rank++ {
		for i := keep; i < len(peers); i++ {
			if has[i] == rank {
				out = append(out, peers[i])
			}
		}
	}
	return out
}

// Size returns the object's length in bytes.
func (r *Reader) Size() int64 { return r.size }

// CID returns the object's content ID.
func (r *Reader) CID() cid.Cid { return r.root }

// Object returns the object's chain record when the Reader was opened by
// object ID.
func (r *Reader) Object() (chain.DataObject, bool) {
	if r.obj == nil {
		return chain.DataObject{}, false
	}
	return *r.obj, true
}

// bound returns ctx, also ended when the context given to Open is, with
// the error of whichever ended first as its cause. One Open's context
// ended already ends it before bound returns: context.AfterFunc would
// cancel it in a goroutine of its own, after a read that waits for
// nothing could have finished.
func (r *Reader) bound(ctx context.Context) (context.Context, func()) {
	if ctx == r.ctx {
		return ctx, func() {}
	}
	both, cancel := context.WithCancelCause(ctx)
	if err := r.ctx.Err(); err != nil {
		cancel(err)
		return both, func() {}
	}
	stop := context.AfterFunc(r.ctx, func() { cancel(r.ctx.Err()) })
	return both, func() { stop(); cancel(nil) }
}

// startRead registers a read; it fails once the Reader is closed.
func (r *Reader) startRead() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("read %s: %w", r.describe(), ErrClosed)
	}
	r.reads++
	return nil
}

// endRead ends a read startRead began; the last read of a closed Reader
// releases it.
func (r *Reader) endRead() {
	r.mu.Lock()
	r.reads--
	last := r.closed && r.reads == 0
	r.mu.Unlock()
	if last {
		r.once.Do(r.c.end)
	}
}

// WriteTo writes the whole object to w. It implements io.WriterTo.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	return r.WriteRange(r.ctx, w, 0, r.size)
}

// leafEstimate returns how many chunks a range ending at end spans, given
// its first leaf l: exact for the DAGs Satchel's chunker makes, whose
// chunks all have one size but the last; the walk corrects it for others.
func leafEstimate(l leaf, end int64) int {
	next := l.off + l.size
	if l.size <= 0 || next >= end {
		return 1
	}
	return 1 + int((end-next+l.size-1)/l.size)
}

// callerWrite writes p to the caller's w. It runs in a goroutine of the
// download, where the caller could not recover a panic of w: one becomes
// the download's error, a *PanicError with the panic's stack, instead of
// ending the program.
func callerWrite(w io.Writer, p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, &PanicError{What: "the writer given to the download", Value: v, Stack: debug.Stack()}
		}
	}()
	return w.Write(p)
}

var errNilWriter = errors.New("client: nil io.Writer given to the download")

// fetchJob is one leaf of a download on its way.
type fetchJob struct {
	leaf leaf
	data []byte
	blk  fetch.Block // data's pooled buffer, released once written
	err  error
	done chan struct{}
}

// WriteRange writes n bytes of the object from offset off to w, in order.
// Chunks are fetched in parallel, up to the fetch window ahead of the one
// being written. A range past the end is cut at the end. Both ctx and the
// context given to Open bound it: it returns the error of the first that
// ends.
func (r *Reader) WriteRange(ctx context.Context, w io.Writer, off, n int64) (written int64, err error) {
	if off < 0 || n < 0 {
		return 0, errors.New("client: negative offset or length")
	}
	if w == nil {
		return 0, errNilWriter
	}
	if err := r.startRead(); err != nil {
		return 0, err
	}
	defer r.endRead()
	return r.writeRange(ctx, w, off, n, nil)
}

// writeRange is WriteRange of a read started (startRead); keep, when not
// nil, is given every chunk written, whole (its bytes are the pool's:
// keep copies what it keeps).
func (r *Reader) writeRange(ctx context.Context, w io.Writer, off, n int64, keep func(l leaf, data []byte)) (written int64, err error) {
	ctx, stop := r.bound(ctx)
	defer stop()
	if ctx.Err() != nil {
		// Ended before it began: a range whose bytes are in hand (an
		// inline leaf, a root that is the only chunk) would otherwise be
		// written, as the goroutines below pick at random between a
		// ready chunk and the ended context.
		return 0, context.Cause(ctx)
	}
	if off > r.size {
		off = r.size
	}
	end := min(off+n, r.size)
	tr := newTracker(OpGet, r.o.progress, r.c.progressEvery)
	tr.log = r.c.log
	tr.update(true, func(p *Progress) {
		p.Bag, p.Root, p.TotalBytes, p.Providers = r.bag, r.root, end-off, r.srcs.count()
		if r.obj != nil {
			p.Object, p.ObjectKnown = r.obj.ID, true
		}
	})
	defer tr.flush()
	if end <= off {
		return 0, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	window := r.c.opts.fetchWindow
	rw := &rangeWrite{r: r, tr: tr, ctx: gctx, off: off, end: end, w: w, keep: keep,
		ordered: make(chan *fetchJob, window), work: make(chan *fetchJob, window)}
	g.Go(rw.walk)
	for range window {
		g.Go(rw.fetch)
	}
	g.Go(rw.emit)
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return rw.written, context.Cause(ctx)
		}
		return rw.written, fmt.Errorf("read %s: %w", r.describe(), err)
	}
	return rw.written, nil
}

// Close releases the Reader: at once, or when the last read in progress
// returns (cancel the context given to Open to end them sooner; a read
// blocked in its writer's Write ends when the Write does). It does not
// wait for them. Reads after Close fail with ErrClosed.
func (r *Reader) Close() error {
	r.mu.Lock()
	r.closed = true
	idle := r.reads == 0
	r.mu.Unlock()
	if idle {
		r.once.Do(r.c.end)
	}
	return nil
}

// Get writes the content ref names to w and returns the bytes written.
func (c *Client) Get(ctx context.Context, ref Ref, w io.Writer, opts ...GetOption) (int64, error) {
	if w == nil {
		return 0, errNilWriter
	}
	r, err := c.Open(ctx, ref, opts...)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.WriteRange(ctx, w, 0, r.size)
}

// GetRange writes n bytes of the content ref names, from offset off, to w,
// and returns the bytes written (fewer when the range passes the end).
func (c *Client) GetRange(ctx context.Context, ref Ref, off, n int64, w io.Writer, opts ...GetOption) (int64, error) {
	if w == nil {
		return 0, errNilWriter
	}
	r, err := c.Open(ctx, ref, opts...)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.WriteRange(ctx, w, off, n)
}
