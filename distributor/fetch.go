package distributor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// maxBlockBytes bounds a block the node accepts from a provider.
const maxBlockBytes = 4 << 20

// Errors of fetching.
var (
	// ErrNoSource means no storage provider of the bag could serve a block.
	ErrNoSource = errors.New("distributor: no storage provider could serve the block")
	// ErrBadDAG means an object's blocks do not form the UnixFS file the
	// chain describes.
	ErrBadDAG = errors.New("distributor: malformed object DAG")
	// ErrProvidersBusy means every provider holding a block answered busy
	// (its memory budget for all readers spent) for as long as a fetch
	// waits (WithBusyWait); the answer is 503 with Retry-After. It wraps
	// ErrNoSource.
	ErrProvidersBusy = fmt.Errorf("%w: the providers holding it are busy serving others; retry later", ErrNoSource)
)

// fetcher gets blocks: from the cache, or from the bag's providers, one
// fetch per block however many requests want it. Fetched blocks of
// cacheable objects go to the cache.
type fetcher struct {
	src     BlockSource // its Blocks that say Verified are not hashed again (~0.5 CPU s/GiB)
	srcs    *sources
	cache   *cache
	m       *metrics
	log     *slog.Logger
	timeout time.Duration
	// busyWait bounds the pauses of one fetch whose providers are busy.
	busyWait time.Duration
	life     context.Context // the server's: fetches outlive one request
	slots    chan struct{}

	mu     sync.Mutex
	calls  map[callKey]*call
	active map[chain.ObjectID]int // leaf fetches running, per object
	wg     sync.WaitGroup

	nodesMu  sync.Mutex
	nodes    map[cid.Cid]*dagNode // decoded interior nodes, shared by readers…
	oldNodes map[cid.Cid]*dagNode // …and the generation before
}

// maxNodes bounds the decoded interior nodes kept (a node of 174 links is
// about 16 KiB decoded).
const maxNodes = 512

// node returns the decoded interior node c if a reader decoded it lately.
func (f *fetcher) node(c cid.Cid) *dagNode {
	f.nodesMu.Lock()
	defer f.nodesMu.Unlock()
	if n, ok := f.nodes[c]; ok {
		return n
	}
	n, ok := f.oldNodes[c]
	if ok {
		f.keepNodeLocked(c, n)
	}
	return n
}

// keepNode remembers decoded node c (verified against its CID).
func (f *fetcher) keepNode(c cid.Cid, n *dagNode) {
	f.nodesMu.Lock()
	defer f.nodesMu.Unlock()
	f.keepNodeLocked(c, n)
}

func (f *fetcher) keepNodeLocked(c cid.Cid, n *dagNode) {
	if f.nodes == nil || len(f.nodes) >= maxNodes/2 {
		f.oldNodes, f.nodes = f.nodes, make(map[cid.Cid]*dagNode, maxNodes/2)
	}
	f.nodes[c] = n
}

type callKey struct {
	obj chain.ObjectID
	c   cid.Cid
}

// wait waits for the fetch l, which it takes over, and returns it; on the
// fetch's error, or ctx's end first, it drops l and returns the error. Every
// wait for a fetch goes through here.
func (f *fetcher) wait(ctx context.Context, l *lease) (*lease, error) {
	select {
	case <-l.done:
		if err := l.err; err != nil {
			l.drop()
			return nil, err
		}
		return l, nil
	case <-ctx.Done():
		l.drop()
		return nil, ctx.Err()
	}
}

// hit returns a lease on block c of obj, done, when the cache holds it (to
// read from there), else nil. Readers get blocks through
// objectReader.start, which fetches a block not cached (startFetch) only
// once its answer holds a miss slot.
func (f *fetcher) hit(obj chain.DataObject, c cid.Cid) *lease {
	if f.cache.holds(obj.ID, c) {
		return &lease{call: &call{done: closedDone, refs: 1}, f: f}
	}
	return nil
}

// startFetch returns a lease on the network fetch of block c of obj,
// joining the one running if any. The caller drops the lease (whether or
// not it waited for the fetch). With orCache, a block the cache holds by
// now is read from there: the caller found it not cached, but a fetch may
// have ended since, put the block in the cache and stopped being findable
// (run), and fetching it again would fetch it twice. A caller whose
// cached copy could not be read goes past the cache (orCache false).
func (f *fetcher) startFetch(obj chain.DataObject, c cid.Cid, keep, orCache bool) *lease {
	k := callKey{obj.ID, c}
	f.mu.Lock()
	if cl, ok := f.calls[k]; ok {
		cl.refs++
		f.mu.Unlock()
		return &lease{call: cl, f: f}
	}
	// Under f.mu: run deletes its call under it only after its cache put.
	if orCache {
		if l := f.hit(obj, c); l != nil {
			f.mu.Unlock()
			return l
		}
	}
	// Two holds: the fetch's own and the caller's lease.
	cl := &call{done: make(chan struct{}), paused: make(chan struct{}), network: true, refs: 2}
	f.calls[k] = cl
	leaf := c.Type() == cid.Raw
	if leaf {
		f.active[obj.ID]++
	}
	f.wg.Add(1)
	f.mu.Unlock()
	go f.run(obj, c, keep, cl)
	return &lease{call: cl, f: f}
}

// run does the fetch of call cl (block c of obj), caches the block when
// asked to (or when it is an interior node) and lets go of the fetch's
// hold.
func (f *fetcher) run(obj chain.DataObject, c cid.Cid, keep bool, cl *call) {
	defer f.wg.Done()
	cl.blk, cl.err = f.fetch(obj, c, cl.pause)
	// Waiters go on with the bytes while they are written to the cache;
	// the call stays findable until then, so no second fetch of the block
	// starts meanwhile.
	close(cl.done)
	// Interior nodes are cached whatever the object's size: they are a
	// tiny share of it, and a seek needs them first.
	if cl.err == nil && (keep || c.Type() == cid.DagProtobuf) {
		if err := f.cache.put(obj.ID, c, cl.blk.Data); err != nil {
			f.log.Warn("cache a block", "object", obj.ID, "cid", c, "err", err)
		}
	}
	f.mu.Lock()
	delete(f.calls, callKey{obj.ID, c})
	if c.Type() == cid.Raw {
		if f.active[obj.ID]--; f.active[obj.ID] <= 0 {
			delete(f.active, obj.ID)
		}
	}
	blk := f.unrefLocked(cl) // the fetch's hold, after the last lease could be taken
	f.mu.Unlock()
	blk.Release()
}

// fetching reports whether a fetch of content (a leaf) of obj is running.
func (f *fetcher) fetching(obj chain.ObjectID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active[obj] > 0
}

// fetch gets block c from the bag's providers, best ranked first, falling
// back to the next on any failure, and verifies it. A second round asks
// the chain and the DHT for the providers again. While every provider
// holding the block answers busy, it asks again after a pause, for up to
// busyWait. It holds a --max-fetches slot while it asks, not while it
// pauses: other fetches run meanwhile (and paused is called, so that
// answers waiting for it give back their miss slots). A leaf stays in the source's
// buffer; an interior node is copied out of it (see below).
func (f *fetcher) fetch(obj chain.DataObject, c cid.Cid, paused func()) (fetch.Block, error) {
	if err := f.takeSlot(); err != nil {
		return fetch.Block{}, err
	}
	held := true
	defer func() {
		if held {
			<-f.slots
		}
	}()
	var errs []error
	bw := fetch.BusyWait{Max: f.busyWait}
	for round := 0; ; round++ {
		if round == 1 {
			f.srcs.invalidate(&obj.Bag)
		} else if round > 1 {
			errs = errs[:0] // this round's errors say why
		}
		blk, busy, err := f.fromPeers(obj, c, &errs)
		if err == nil || f.life.Err() != nil {
			return blk, err
		}
		if round == 0 {
			continue
		}
		if busy == 0 {
			return fetch.Block{}, fmt.Errorf("%w: block %s of object %d (bag %s): %w", ErrNoSource, c, obj.ID, obj.Bag, errors.Join(errs...))
		}
		<-f.slots // the pause holds no slot
		held = false
		paused()
		if ok, err := bw.Wait(f.life); err != nil {
			return fetch.Block{}, err
		} else if !ok {
			return fetch.Block{}, fmt.Errorf("%w: block %s of object %d (bag %s), asked for %s: %w", ErrProvidersBusy, c, obj.ID, obj.Bag, bw.Waited(), errors.Join(errs...))
		}
		if err := f.takeSlot(); err != nil {
			return fetch.Block{}, err
		}
		held = true
	}
}

// takeSlot takes a --max-fetches slot, waiting while all are taken; it
// fails when the server closes first.
func (f *fetcher) takeSlot() error {
	select {
	case f.slots <- struct{}{}:
		return nil
	case <-f.life.Done():
		return f.life.Err()
	}
}

// errAllFailed is fromPeers' error when no provider delivered the block;
// the reasons are in the errors it was given.
var errAllFailed = errors.New("no provider delivered the block")

// fromPeers asks the bag's providers for block c, best ranked first (the
// chain's operators before peers only the DHT names, which get a short
// timeout until they deliver once), and returns the first that delivers
// it, verified. It adds every failure to
// errs and returns how many providers answered busy: those are not
// failures, and rank behind the others for a while.
func (f *fetcher) fromPeers(obj chain.DataObject, c cid.Cid, errs *[]error) (fetch.Block, int, error) {
	peers, err := f.srcs.ranked(f.life, obj.Bag, 1<<20)
	if err != nil {
		*errs = append(*errs, err)
		return fetch.Block{}, 0, errAllFailed
	}
	busy := 0
	for _, src := range peers {
		p := src.id
		ctx, cancel := context.WithTimeout(f.life, src.timeout(f.timeout))
		t0 := time.Now()
		blk, err := f.src.ReadBlock(ctx, p, c)
		d := time.Since(t0)
		cancel()
		if err == nil && len(blk.Data) > maxBlockBytes {
			err = fmt.Errorf("block of %d bytes, over the %d-byte limit", len(blk.Data), maxBlockBytes)
		}
		if err == nil && !blk.Verified() {
			err = chunker.VerifyChunk(c, blk.Data)
		}
		if err != nil {
			blk.Release()
			*errs = append(*errs, fmt.Errorf("%s: %w", p, err))
			if f.life.Err() != nil {
				return fetch.Block{}, busy, f.life.Err()
			}
			if errors.Is(err, fetch.ErrProviderBusy) {
				busy++
				f.srcs.busy(p)
				f.m.fetchBusy.Inc()
				f.log.Debug("provider busy; trying the next one", "cid", c, "peer", p)
				continue
			}
			f.srcs.fail(p)
			f.m.fetchErrors.Inc()
			f.log.Debug("fetch failed; trying the next provider", "cid", c, "peer", p, "err", err)
			continue
		}
		f.srcs.observe(p, len(blk.Data), d)
		f.m.fetched.Add(float64(len(blk.Data)))
		if c.Type() != cid.Raw {
			// An interior node is decoded into nodes kept beyond any
			// lease (fetcher.nodes), which may alias its bytes: it
			// gets bytes of its own and the buffer goes back at once.
			// Nodes are a tiny share of an object's bytes.
			own := bytes.Clone(blk.Data)
			blk.Release()
			blk = fetch.Block{Data: own}
		}
		return blk, 0, nil
	}
	return fetch.Block{}, busy, errAllFailed
}
