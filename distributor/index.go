package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// Lookup outcomes that the HTTP API maps to status codes.
var (
	// ErrUnknownObject: no such object on chain (404).
	ErrUnknownObject = errors.New("distributor: no such data object")
	// ErrPending: the object exists in a bag this node serves but no
	// storage provider has accepted it yet (404, short max-age).
	ErrPending = errors.New("distributor: data object not accepted yet")
	// ErrNotDistributed: the object exists but its bag is not in a
	// distributing bucket this node operates (421).
	ErrNotDistributed = errors.New("distributor: data object not distributed by this node")
	// ErrChainUnavailable: the object's record could not be read from the
	// chain (503).
	ErrChainUnavailable = errors.New("distributor: chain node unavailable")
)

// recordTimeout bounds reading one object's record from the chain.
const recordTimeout = 10 * time.Second

// record is what the node serves an object by: its chain record, its
// parsed content ID and its ETag. Records are never changed; a change on
// chain replaces the record.
type record struct {
	obj     chain.DataObject
	root    cid.Cid // cid.Undef when the content ID does not parse
	etag    string
	etagHdr []string // {etag}, the ETag header's value
}

func newRecord(o chain.DataObject) *record {
	root, _ := cid.Decode(o.ContentID)
	etag := `"` + o.ContentID + `"`
	return &record{obj: o, root: root, etag: etag, etagHdr: []string{etag}}
}

// index is the node's view of the chain: the bags its buckets distribute,
// the bag of every object (compact ID runs, to tell 404 from 421), and the
// records of recently registered or requested objects of its bags (bounded;
// others are read from the chain on demand). It follows the chain's block
// events (follow.go), so a deleted object or a bag moved away stops being
// served once the next block is committed.
type index struct {
	c       ChainReader
	id      Identity
	log     *slog.Logger
	maxRecs int
	life    context.Context
	// health is told of every read's outcome; backoff and maxBackoff pace
	// the follower's tries after a failure (follow.go).
	health              *chainHealth
	backoff, maxBackoff time.Duration

	// onDrop is called, outside the lock, with served objects deleted.
	onDrop func([]chain.ObjectID)
	// onBagsLeft is called, outside the lock, when bags stopped being
	// served: the owner drops what it holds of their objects.
	onBagsLeft func()
	// onSources is called when the storage side of a bag changed (nil bag:
	// any bag).
	onSources func(bag *chain.BagID)
	// onAccepted is called, outside the lock, with served objects that
	// became accepted.
	onAccepted func([]chain.DataObject)

	mu      sync.RWMutex
	served  map[chain.DistributionBucketID]bool // buckets served (distributing, operated by us)
	bags    map[chain.BagID]bool                // bags served
	bagNum  map[chain.BagID]uint32
	bagIDs  []chain.BagID // by number
	runs    *idRuns
	recs    map[chain.ObjectID]*record // recent records…
	oldRecs map[chain.ObjectID]*record // …and the generation before
	gen     uint64                     // changes with every object event
	reading map[chain.ObjectID]*recordRead
	height  int64
	ready   chan struct{}
}

// recordRead is one read of a record from the chain, shared by the
// requests that wait for it.
type recordRead struct {
	done chan struct{}
	rec  *record
	err  error
}

// newIndex returns an index reading c; record reads outlive a request but
// not life.
func newIndex(life context.Context, c ChainReader, id Identity, maxRecs int, log *slog.Logger) *index {
	return &index{
		c: c, id: id, log: log, maxRecs: maxRecs, life: life, backoff: followBackoff, maxBackoff: maxFollowBackoff,
		onDrop:     func([]chain.ObjectID) {},
		onBagsLeft: func() {},
		onSources:  func(*chain.BagID) {},
		onAccepted: func([]chain.DataObject) {},
		served:     map[chain.DistributionBucketID]bool{},
		bags:       map[chain.BagID]bool{},
		bagNum:     map[chain.BagID]uint32{},
		runs:       &idRuns{},
		recs:       map[chain.ObjectID]*record{},
		oldRecs:    map[chain.ObjectID]*record{},
		reading:    map[chain.ObjectID]*recordRead{},
		ready:      make(chan struct{}),
	}
}

// lookup returns the record of object id when this node serves it.
func (x *index) lookup(ctx context.Context, id chain.ObjectID) (*record, error) {
	x.mu.RLock()
	bag, served, known := x.bagOf(id)
	rec, fresh := x.recs[id]
	if !fresh {
		rec = x.oldRecs[id]
	}
	gen := x.gen
	x.mu.RUnlock()
	switch {
	case !known:
		return nil, fmt.Errorf("%w: object %d", ErrUnknownObject, id)
	case !served:
		return nil, fmt.Errorf("%w: object %d is in bag %s, which none of this node's buckets distributes; ask a distributor of that bag", ErrNotDistributed, id, bag)
	case rec == nil:
		var err error
		if rec, err = x.read(ctx, bag, id, gen); err != nil {
			return nil, err
		}
	case !fresh:
		x.mu.Lock()
		if x.gen == gen {
			x.keep(rec)
		}
		x.mu.Unlock()
	}
	if !rec.obj.Accepted {
		return rec, fmt.Errorf("%w: object %d of bag %s", ErrPending, id, rec.obj.Bag)
	}
	return rec, nil
}

// bagOf returns the bag of object id and whether it is served (under mu).
func (x *index) bagOf(id chain.ObjectID) (bag chain.BagID, served, known bool) {
	n, ok := x.runs.find(uint64(id))
	if !ok || int(n) >= len(x.bagIDs) {
		return "", false, false
	}
	bag = x.bagIDs[n]
	return bag, x.bags[bag], true
}

// read reads object id's record from the chain (one read however many
// requests wait) and keeps it unless an object event came meanwhile.
func (x *index) read(ctx context.Context, bag chain.BagID, id chain.ObjectID, gen uint64) (*record, error) {
	x.mu.Lock()
	rd, ok := x.reading[id]
	if !ok {
		rd = &recordRead{done: make(chan struct{})}
		x.reading[id] = rd
		go x.readRecord(rd, bag, id, gen)
	}
	x.mu.Unlock()
	select {
	case <-rd.done:
		return rd.rec, rd.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (x *index) readRecord(rd *recordRead, bag chain.BagID, id chain.ObjectID, gen uint64) {
	ctx, cancel := context.WithTimeout(x.life, recordTimeout)
	o, err := x.c.DataObject(ctx, bag, id)
	cancel()
	switch {
	case errors.Is(err, chain.ErrNotFound):
		x.health.ok()
		rd.err = fmt.Errorf("%w: object %d", ErrUnknownObject, id)
	case err != nil:
		if x.life.Err() == nil { // a read cut short by shutdown says nothing of the chain
			x.health.fail("an object's record", err)
		}
		rd.err = fmt.Errorf("%w: read object %d of bag %s: %v; try again shortly", ErrChainUnavailable, id, bag, err)
	default:
		x.health.ok()
		rd.rec = newRecord(o)
	}
	x.mu.Lock()
	delete(x.reading, id)
	if rd.rec != nil && x.gen == gen {
		x.keep(rd.rec)
	}
	x.mu.Unlock()
	close(rd.done)
}

// keep remembers rec (under mu): a bounded two-generation cache, the older
// generation dropped whole when the newer fills half the bound.
func (x *index) keep(rec *record) {
	id := rec.obj.ID
	delete(x.oldRecs, id)
	x.recs[id] = rec
	if len(x.recs) >= x.maxRecs/2 {
		x.oldRecs, x.recs = x.recs, make(map[chain.ObjectID]*record, x.maxRecs/2)
	}
}

// forget drops the record of id (under mu).
func (x *index) forget(id chain.ObjectID) {
	delete(x.recs, id)
	delete(x.oldRecs, id)
}

// servedBuckets returns the buckets this node serves now.
func (x *index) servedBuckets() []chain.DistributionBucketID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := slices.Collect(maps.Keys(x.served))
	slices.SortFunc(out, func(a, b chain.DistributionBucketID) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	return out
}

// counts returns the number of bags and objects served, and the height
// of the last block read.
func (x *index) counts() (bags, objects int, height int64) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	objects = x.runs.count(func(n uint32) bool { return int(n) < len(x.bagIDs) && x.bags[x.bagIDs[n]] })
	return len(x.bags), objects, x.height
}

// footprint returns the ID runs and the records held, for tests.
func (x *index) footprint() (runs, records int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.runs.r), len(x.recs) + len(x.oldRecs)
}

// isServed reports whether object id is served now (accepted or not).
func (x *index) isServed(id chain.ObjectID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, served, _ := x.bagOf(id)
	return served
}

// load reads the node's buckets and, page by page, the object IDs of
// every bag into ID runs; no object record is kept.
func (x *index) load(ctx context.Context, height int64) error {
	served, bags, err := x.readBuckets(ctx)
	if err != nil {
		return err
	}
	all, err := x.c.Bags(ctx)
	if err != nil {
		return fmt.Errorf("list bags: %w", err)
	}
	bagNum := map[chain.BagID]uint32{}
	var bagIDs []chain.BagID
	var runs []idRun
	ids := make([]uint64, 0, chain.MaxPageLimit)
	for _, b := range all {
		if b.ObjectsCount == 0 {
			continue
		}
		n := uint32(len(bagIDs))
		bagNum[b.ID], bagIDs = n, append(bagIDs, b.ID)
		p := chain.PageRequest{Limit: chain.MaxPageLimit}
		for {
			pg, err := x.c.ObjectsPage(ctx, b.ID, p)
			if errors.Is(err, chain.ErrNotFound) {
				break
			}
			if err != nil {
				return fmt.Errorf("objects of bag %s: %w", b.ID, err)
			}
			ids = ids[:0]
			for _, o := range pg.Items {
				ids = append(ids, uint64(o.ID))
			}
			runs = appendRuns(runs, n, ids)
			if pg.Next == "" || pg.Next == p.Cursor {
				break
			}
			p.Cursor = pg.Next
		}
	}
	x.mu.Lock()
	x.served, x.bags, x.bagNum, x.bagIDs, x.runs = served, bags, bagNum, bagIDs, newIDRuns(runs)
	clear(x.recs)
	clear(x.oldRecs)
	x.gen++
	// A proven load may show the state before block height, whose events
	// are applied next.
	x.height = max(x.height, height-1)
	nruns := len(x.runs.r)
	x.mu.Unlock()
	x.onBagsLeft() // whatever stopped being served while not followed
	x.log.Info("chain state loaded", "height", height, "buckets", len(served), "bags", len(bags), "objectRuns", nruns)
	return nil
}

// readBuckets returns the node's buckets that distribute and that its
// worker operates, and their bags.
func (x *index) readBuckets(ctx context.Context) (map[chain.DistributionBucketID]bool, map[chain.BagID]bool, error) {
	served := map[chain.DistributionBucketID]bool{}
	bags := map[chain.BagID]bool{}
	for _, id := range x.id.Buckets {
		b, err := x.c.DistributionBucket(ctx, id)
		if errors.Is(err, chain.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("distribution bucket %s: %w", id, err)
		}
		if !b.Distributing || !b.HasOperator(x.id.Worker) {
			continue
		}
		served[id] = true
		for _, bag := range b.Bags {
			bags[bag] = true
		}
	}
	return served, bags, nil
}

// rebucket reads the node's buckets again; when bags left, the owner drops
// what it holds of their objects.
func (x *index) rebucket(ctx context.Context) error {
	served, bags, err := x.readBuckets(ctx)
	if err != nil {
		return err
	}
	x.mu.Lock()
	left := false
	for b := range x.bags {
		left = left || !bags[b]
	}
	x.served, x.bags = served, bags
	x.gen++
	x.mu.Unlock()
	if left {
		x.onBagsLeft()
	}
	return nil
}
