package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Sync fetches the objects of the node's bags that it lacks from the other
// providers of each bag, found through the chain (the operators' published
// peer IDs and addresses) and the DHT (providers of the bag key). It reads
// the object's DAG from the root down to learn the chunk list, then every
// chunk it does not hold, each verified against its CID before it is
// stored, and finally the manifest. A job that stops half way leaves its
// chunks stored; the next attempt skips them. The queue itself is not
// persisted: it is recomputed from the chain and the store at start.

const (
	// chunkReadsPerObject is how many chunk reads one sync job keeps in
	// flight, spread over the sources.
	chunkReadsPerObject = 4

	// maxDAGDepth bounds the DAG walk: 174^8 chunks is beyond any file.
	maxDAGDepth = 8

	// peerCacheTTL is how long the peers found for a bag are reused.
	// Metadata and bucket events invalidate it sooner.
	peerCacheTTL = 10 * time.Second

	// dhtLookupTimeout bounds one FindProviders lookup for a bag.
	dhtLookupTimeout = 5 * time.Second
	// maxDHTPeers bounds the peers a bag's DHT look-up adds to the
	// chain's operators (peerFinder.withDHT).
	maxDHTPeers = 20
)

// errNoSource means no peer could serve an object yet: for a pending
// object, nobody has bound it; for an accepted one, its holders are
// unreachable. Its acceptance event or the retry clock retries it.
var errNoSource = errors.New("provider: no peer serves the object yet")

// syncJob is one object to fetch.
type syncJob struct {
	bag    chain.BagID
	object chain.DataObject
	// sources, when set, are the peers to fetch from (a MIRROR names
	// them); otherwise the bag's providers that hold the object.
	sources []peer.ID
}

// syncQueue holds the sync jobs, deduplicated by object.
type syncQueue struct {
	mu      sync.Mutex
	queued  map[uint64]syncJob
	order   []uint64
	running map[uint64]bool
	// again holds a job added while its object was being synced: an event
	// that arrived meanwhile (the object accepted elsewhere: a source now)
	// runs it once more when the running one ends.
	again map[uint64]syncJob
	wake  chan struct{}
}

func newSyncQueue() *syncQueue {
	return &syncQueue{queued: map[uint64]syncJob{}, running: map[uint64]bool{}, again: map[uint64]syncJob{}, wake: make(chan struct{}, 1)}
}

func (q *syncQueue) add(j syncJob) {
	id := uint64(j.object.ID)
	q.mu.Lock()
	if q.running[id] {
		if old, ok := q.again[id]; ok {
			j.sources = mergeSources(old.sources, j.sources)
		}
		q.again[id] = j
		q.mu.Unlock()
		return
	}
	q.queueLocked(id, j)
	q.mu.Unlock()
	q.signal()
}

// queueLocked queues j, or updates the job queued for its object: the
// sources of the two are merged, so a MIRROR cannot replace a job's
// sources with its own.
func (q *syncQueue) queueLocked(id uint64, j syncJob) {
	old, ok := q.queued[id]
	if !ok {
		q.order = append(q.order, id)
	} else {
		j.sources = mergeSources(old.sources, j.sources)
	}
	q.queued[id] = j
}

// mergeSources merges the sources of two jobs of one object: none (the
// bag's providers, found from the chain) wins over named ones; otherwise
// the first job's are kept and the second's added, up to
// contracts.MaxMirrorSources.
func mergeSources(first, second []peer.ID) []peer.ID {
	if len(first) == 0 || len(second) == 0 {
		return nil
	}
	out := slices.Clone(first)
	for _, p := range second {
		if len(out) >= contracts.MaxMirrorSources {
			break
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func (q *syncQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest queued job and marks it running.
func (q *syncQueue) next() (syncJob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) > 0 {
		id := q.order[0]
		q.order = q.order[1:]
		j, ok := q.queued[id]
		if !ok {
			continue
		}
		delete(q.queued, id)
		q.running[id] = true
		return j, true
	}
	return syncJob{}, false
}

// done ends the running job of an object, and queues it again when it was
// added meanwhile and the object is still missing (held reports whether
// it is held now).
func (q *syncQueue) done(id uint64, held bool) {
	q.mu.Lock()
	delete(q.running, id)
	j, again := q.again[id]
	delete(q.again, id)
	if again && !held {
		q.queueLocked(id, j)
	}
	q.mu.Unlock()
	if again && !held {
		q.signal()
	}
}

// dropBag forgets the queued jobs of bag (running ones finish).
func (q *syncQueue) dropBag(bag chain.BagID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, j := range q.queued {
		if j.bag == bag {
			delete(q.queued, id)
		}
	}
	for id, j := range q.again {
		if j.bag == bag {
			delete(q.again, id)
		}
	}
}

// dropObject forgets a queued job of an object.
func (q *syncQueue) dropObject(id uint64) {
	q.mu.Lock()
	delete(q.queued, id)
	delete(q.again, id)
	q.mu.Unlock()
}

// busy reports whether an object is being synced.
func (q *syncQueue) busy(id uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running[id]
}

// counts returns the queued and the running jobs.
func (q *syncQueue) counts() (queued, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued), len(q.running)
}

// syncLoop runs the queued jobs on at most syncWorkers goroutines.
func (s *Server) syncLoop(ctx context.Context) {
	var g errgroup.Group
	g.SetLimit(s.cfg.syncWorkers)
	defer g.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.syncer.wake:
		}
		for ctx.Err() == nil {
			j, ok := s.syncer.next()
			if !ok {
				break
			}
			g.Go(func() error {
				defer func() { s.syncer.done(uint64(j.object.ID), s.holdings.has(uint64(j.object.ID))) }()
				s.runSync(ctx, j)
				return nil
			})
		}
	}
}

// runSync runs one job and records its outcome.
func (s *Server) runSync(ctx context.Context, j syncJob) {
	start := time.Now()
	n, err := s.syncObject(ctx, j)
	switch {
	case err == nil:
		s.m.syncObjects.WithLabelValues("ok").Inc()
		if n > 0 {
			s.log.Info("synced object", "bag", j.bag, "object", uint64(j.object.ID), "bytes", n, "took", time.Since(start).Round(time.Millisecond))
		}
	case errors.Is(err, errNoSource):
		s.m.syncObjects.WithLabelValues("no_source").Inc()
		s.log.Debug("sync: no source yet", "bag", j.bag, "object", uint64(j.object.ID), "accepted", j.object.Accepted)
	case ctx.Err() != nil:
	case !j.object.Accepted:
		// A pending object's holder may still be receiving it: a one-chunk
		// object's chunk is there before the upload is bound and served.
		s.m.syncObjects.WithLabelValues("failed").Inc()
		s.log.Debug("sync of a pending object failed; retrying at the next reconcile", "bag", j.bag, "object", uint64(j.object.ID), "err", err)
	default:
		s.m.syncObjects.WithLabelValues("failed").Inc()
		s.log.Warn("sync object failed; retrying at the next reconcile", "bag", j.bag, "object", uint64(j.object.ID), "err", err)
	}
	// Look at the object again: it may have been deleted while it was
	// being fetched (a bag moved meanwhile comes with its own event). A
	// failed sync waits for the retry clock, or an event about the object
	// or its peers.
	switch {
	case err == nil:
		s.recon.markObjects(j.bag, []chain.ObjectID{j.object.ID}, "")
	case ctx.Err() == nil:
		s.recon.retryLater(j.bag, j.object.ID)
	}
}

// syncObject fetches one object from the bag's other providers. It returns
// the bytes it fetched.
func (s *Server) syncObject(ctx context.Context, j syncJob) (int64, error) {
	id := uint64(j.object.ID)
	// Recorded already (bound, or synced before): nothing to fetch. The
	// store is asked, not holdings, which also says no while the object is
	// being removed: that must not fetch it again.
	if ok, err := s.bs.HasObject(id); err == nil && ok {
		return 0, nil
	}
	root, err := cid.Decode(j.object.ContentID)
	if err != nil {
		return 0, fmt.Errorf("object %d has an unreadable content ID %q: %w", id, j.object.ContentID, err)
	}
	// The sources are looked up at the first block not held here: an
	// object whose every block this node holds already (for another
	// object with the same bytes) is recorded from them, with no peer to
	// ask — its only other holder may be gone.
	f := &blockFetcher{s: s, sources: j.sources, sess: s.syncSession(j)}
	if len(j.sources) == 0 {
		f.find = sync.OnceValues(func() ([]peer.ID, error) { return s.sourcesOf(ctx, j.bag, root) })
	}

	var chunks []blockstore.ChunkRef
	var fetched int64
	if root.Type() == cid.Raw {
		// A one-chunk object: the root is the chunk.
		if ok, _ := s.bs.Has(root); !ok {
			data, err := f.get(ctx, root, 0)
			if err != nil {
				return 0, err
			}
			if err := f.put(root, data); err != nil {
				return 0, fmt.Errorf("store chunk %s: %w", root, err)
			}
			fetched += int64(len(data))
			chunks = []blockstore.ChunkRef{{CID: root, Size: uint64(len(data))}}
		} else {
			data, err := s.bs.Get(root)
			if err != nil {
				return 0, fmt.Errorf("read chunk %s: %w", root, err)
			}
			chunks = []blockstore.ChunkRef{{CID: root, Size: uint64(len(data))}}
		}
	} else {
		var nodes []chunker.Block
		chunks, nodes, err = s.walkDAG(ctx, f, root, j.object.Size)
		if err != nil {
			return 0, err
		}
		n, err := s.fetchChunks(ctx, f, chunks)
		fetched += n
		if err != nil {
			return fetched, err
		}
		for _, nd := range nodes {
			if ok, _ := s.bs.Has(nd.CID); ok {
				f.pin(nd.CID)
				continue
			}
			if err := f.put(nd.CID, nd.Data); err != nil {
				return fetched, fmt.Errorf("store DAG node %s: %w", nd.CID, err)
			}
		}
	}
	var size uint64
	for _, c := range chunks {
		size += c.Size
	}
	if j.object.Size != 0 && size != j.object.Size {
		// No retry will change the DAG under the chain's content ID: let
		// its blocks go now.
		f.abandon()
		return fetched, fmt.Errorf("object %d: its DAG holds %d bytes, the chain says %d", id, size, j.object.Size)
	}
	m := blockstore.Manifest{Bag: string(j.bag), Object: id, Root: root, Size: size, Chunks: chunks}
	if err := s.full.note("sync", s.bs.PutManifest(m)); err != nil {
		return fetched, fmt.Errorf("store manifest of object %d: %w", id, err)
	}
	// The object is held and served from here on: holdings answers from
	// the manifest just recorded. The object holds the blocks now; the sync's session has done its work.
	f.abandon()
	// Chunks pushed for the object before this node went down wait in its
	// upload session for a BIND that sync has just made moot: the object
	// holds them now, and they must go when it goes, not at the session's
	// expiry.
	if err := s.bs.EndSession(store.ObjectSessionID(id)); err != nil {
		s.log.Debug("ending the synced object's upload session failed", "object", id, "err", err)
	}
	// Streamed sessions holding nothing but the object's chunks, none
	// stored within the grace, are uploads that lost this node before they
	// could bind: they go after a grace, unless they carry on. One that
	// stored a chunk within the grace may be another upload of the same
	// bytes about to bind: it keeps the expiry its receipts promised.
	if _, err := s.bs.ExpireSessionsWithin(id, store.IsClientSessionID, s.cfg.orphanGrace, time.Now().Add(s.cfg.orphanGrace)); err != nil {
		s.log.Debug("expiring the synced object's streamed sessions failed", "object", id, "err", err)
	}
	s.state.addBag(j.bag)
	s.m.syncBytes.Add(float64(fetched))
	if !j.object.Accepted {
		// A pending object held by another provider: holding it too means
		// one dead node cannot lose it, and accepting it is now true of
		// this node as well.
		s.acceptor.add(j.bag, j.object.ID)
	}
	return fetched, nil
}

// sourcesOf returns the peers that hold root, asking the bag's providers.
func (s *Server) sourcesOf(ctx context.Context, bag chain.BagID, root cid.Cid) ([]peer.ID, error) {
	peers := s.peers.all(ctx, bag)
	if len(peers) == 0 {
		return nil, errNoSource
	}
	have := make([]bool, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
			defer cancel()
			r, err := s.fetch.Have(hctx, p, []cid.Cid{root})
			have[i] = err == nil && len(r) == 1 && r[0]
		})
	}
	wg.Wait()
	var out []peer.ID
	for i, p := range peers {
		if have[i] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errNoSource
	}
	return out, nil
}

// blockFetcher reads verified blocks from a set of sources, starting with a
// different one for each block so the load spreads, and moving on to the
// next source when one fails.
type blockFetcher struct {
	s *Server
	// find, when set, looks the sources up at the first read (once, with
	// the sync's context; its error is every read's); else sources are.
	find    func() ([]peer.ID, error)
	sources []peer.ID
	// sess holds the blocks a sync stores until its object's manifest
	// does: a sync that never finishes leaves nothing behind once the
	// session expires. Zero (repair) stores blocks of held objects plainly.
	sess blockstore.Session
}

// put stores a block the fetch client read and verified against c, in
// the fetcher's session if it has one (where it is not hashed again).
func (f *blockFetcher) put(c cid.Cid, data []byte) error {
	if len(f.sess.ID) == 0 {
		return f.s.full.note("repair", f.s.bs.Put(c, data))
	}
	return f.s.full.note("sync", f.s.bs.PutVerifiedInSession(f.sess, c, data))
}

// pin adds a block the store already holds to the fetcher's session, so
// an expiring session of an earlier attempt does not take it from under
// this one. A block gone meanwhile is fetched by the next attempt.
func (f *blockFetcher) pin(c cid.Cid) {
	if len(f.sess.ID) != 0 {
		_ = f.s.bs.AddToSession(f.sess, c)
	}
}

// abandon ends the fetcher's session: blocks no object holds go now.
func (f *blockFetcher) abandon() {
	if len(f.sess.ID) == 0 {
		return
	}
	if err := f.s.bs.EndSession(f.sess.ID); err != nil {
		f.s.log.Debug("end a sync session", "err", err)
	}
}

// syncSession is the block store session a sync of j stores its blocks
// under: 'y' and the object ID, expiring syncSessionExpiry after its last
// block, so attempts of the same object share and extend it.
func (s *Server) syncSession(j syncJob) blockstore.Session {
	return blockstore.Session{
		ID:     binary.BigEndian.AppendUint64([]byte{'y'}, uint64(j.object.ID)),
		Bag:    string(j.bag),
		Expiry: time.Now().Add(s.cfg.syncSessionExpiry),
	}
}

func (f *blockFetcher) get(ctx context.Context, c cid.Cid, spread int) ([]byte, error) {
	b, err := f.read(ctx, c, spread)
	return b.Data, err
}

// read is get returning the block, verified against c, in a pooled buffer
// the caller releases once done with it.
func (f *blockFetcher) read(ctx context.Context, c cid.Cid, spread int) (fetch.Block, error) {
	sources, err := f.peers()
	if err != nil {
		return fetch.Block{}, err
	}
	var errs []error
	for i := range sources {
		p := sources[(spread+i)%len(sources)]
		gctx, cancel := context.WithTimeout(ctx, f.s.cfg.fetchTimeout)
		b, err := f.s.fetch.ReadBlock(gctx, p, c)
		cancel()
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return fetch.Block{}, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
	}
	return fetch.Block{}, fmt.Errorf("read block %s: %w", c, errors.Join(errs...))
}

// peers returns the fetcher's sources, looked up at the first call if it
// was given none.
func (f *blockFetcher) peers() ([]peer.ID, error) {
	if f.find != nil {
		return f.find()
	}
	return f.sources, nil
}

// walkDAG reads the interior nodes of a UnixFS DAG from the root down and
// returns its leaves in order with their sizes, and the nodes. Every node
// is verified against its CID by the fetch client, so the chunk list is
// exactly the one under the chain's content ID.
func (s *Server) walkDAG(ctx context.Context, f *blockFetcher, root cid.Cid, size uint64) ([]blockstore.ChunkRef, []chunker.Block, error) {
	var chunks []blockstore.ChunkRef
	var nodes []chunker.Block
	maxChunks := uint64(store.MaxBindChunks)
	if size > 0 && size < maxChunks {
		maxChunks = size // every chunk holds at least one byte
	}
	var walk func(c cid.Cid, depth int) error
	walk = func(c cid.Cid, depth int) error {
		if depth > maxDAGDepth {
			return fmt.Errorf("DAG of %s is deeper than %d levels", root, maxDAGDepth)
		}
		var data []byte
		var err error
		if ok, _ := s.bs.Has(c); ok {
			data, err = s.bs.Get(c)
			f.pin(c)
		}
		if data == nil || err != nil {
			data, err = f.get(ctx, c, depth)
			if err != nil {
				return err
			}
		}
		nd, err := merkledag.DecodeProtobuf(data)
		if err != nil {
			return fmt.Errorf("DAG node %s: %w", c, err)
		}
		fsn, err := ft.FSNodeFromBytes(nd.Data())
		if err != nil {
			return fmt.Errorf("DAG node %s is not UnixFS: %w", c, err)
		}
		links := nd.Links()
		sizes := fsn.BlockSizes()
		if len(sizes) != len(links) {
			return fmt.Errorf("DAG node %s: %d links but %d block sizes", c, len(links), len(sizes))
		}
		nodes = append(nodes, chunker.Block{CID: c, Data: data})
		for i, l := range links {
			switch l.Cid.Type() {
			case cid.Raw:
				if uint64(len(chunks)) >= maxChunks {
					return fmt.Errorf("DAG of %s has more chunks than its %d bytes allow", root, size)
				}
				chunks = append(chunks, blockstore.ChunkRef{CID: l.Cid, Size: sizes[i]})
			case cid.DagProtobuf:
				if err := walk(l.Cid, depth+1); err != nil {
					return err
				}
			default:
				return fmt.Errorf("DAG node %s links to %s, neither raw nor dag-pb", c, l.Cid)
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, nil, err
	}
	return chunks, nodes, nil
}

// fetchChunks reads and stores every chunk the store lacks, a few at a
// time, and returns the bytes fetched.
func (s *Server) fetchChunks(ctx context.Context, f *blockFetcher, chunks []blockstore.ChunkRef) (int64, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkReadsPerObject)
	var mu sync.Mutex
	var fetched int64
	for i, c := range chunks {
		if gctx.Err() != nil {
			break
		}
		if ok, _ := s.bs.Has(c.CID); ok {
			f.pin(c.CID)
			continue
		}
		g.Go(func() error {
			b, err := f.read(gctx, c.CID, i)
			if err != nil {
				return err
			}
			defer b.Release() // the store keeps no reference to the bytes
			n := len(b.Data)
			if uint64(n) != c.Size {
				return fmt.Errorf("chunk %d (%s) is %d bytes, its DAG says %d", i, c.CID, n, c.Size)
			}
			if err := f.put(c.CID, b.Data); err != nil {
				return fmt.Errorf("store chunk %s: %w", c.CID, err)
			}
			mu.Lock()
			fetched += int64(n)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return fetched, err
}
