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
)

// index is the node's view of the chain: the bags its buckets distribute
// and their objects, plus the bag of every other object (to tell 421 from
// 404). It follows the chain's block events.
type index struct {
	c   ChainReader
	id  Identity
	log *slog.Logger

	// onDrop is called, outside the lock, with objects that stopped being
	// served (deleted, or their bag moved away).
	onDrop func([]chain.ObjectID)
	// onSources is called when the storage side of a bag changed (nil bag:
	// any bag).
	onSources func(bag *chain.BagID)
	// onAccepted is called, outside the lock, with served objects that
	// became accepted.
	onAccepted func([]chain.DataObject)

	mu        sync.RWMutex
	served    map[chain.DistributionBucketID]bool // buckets served (distributing, operated by us)
	bags      map[chain.BagID]bool
	objects   map[chain.ObjectID]chain.DataObject
	elsewhere map[chain.ObjectID]chain.BagID
	height    int64
	ready     chan struct{}
}

func newIndex(c ChainReader, id Identity, log *slog.Logger) *index {
	return &index{
		c: c, id: id, log: log,
		onDrop:     func([]chain.ObjectID) {},
		onSources:  func(*chain.BagID) {},
		onAccepted: func([]chain.DataObject) {},
		served:     map[chain.DistributionBucketID]bool{},
		bags:       map[chain.BagID]bool{},
		objects:    map[chain.ObjectID]chain.DataObject{},
		elsewhere:  map[chain.ObjectID]chain.BagID{},
		ready:      make(chan struct{}),
	}
}

// lookup returns the object when this node serves it.
func (x *index) lookup(id chain.ObjectID) (chain.DataObject, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if o, ok := x.objects[id]; ok {
		if !o.Accepted {
			return o, fmt.Errorf("%w: object %d of bag %s", ErrPending, id, o.Bag)
		}
		return o, nil
	}
	if bag, ok := x.elsewhere[id]; ok {
		return chain.DataObject{}, fmt.Errorf("%w: object %d is in bag %s, which none of this node's buckets distributes; ask a distributor of that bag", ErrNotDistributed, id, bag)
	}
	return chain.DataObject{}, fmt.Errorf("%w: object %d", ErrUnknownObject, id)
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
	return len(x.bags), len(x.objects), x.height
}

// isServed reports whether object id is served now (accepted or not).
func (x *index) isServed(id chain.ObjectID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.objects[id]
	return ok
}

// run loads the chain's state and follows its blocks until ctx ends,
// subscribing again (and reloading) when the subscription fails.
func (x *index) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := x.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		x.log.Warn("chain subscription ended; reloading", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// follow subscribes from the next block, loads the state, then applies
// every block's events. Events of blocks the load already saw are applied
// again, which changes nothing.
func (x *index) follow(ctx context.Context) error {
	info, err := x.c.Info(ctx)
	if err != nil {
		return fmt.Errorf("chain info: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks, errc := x.c.Subscribe(sctx, info.Height+1)
	if err := x.load(ctx, info.Height); err != nil {
		return err
	}
	select {
	case <-x.ready:
	default:
		close(x.ready)
	}
	for be := range blocks {
		x.apply(ctx, be)
	}
	return <-errc
}

// load reads the node's buckets, their bags and objects, and every other
// bag's object IDs.
func (x *index) load(ctx context.Context, height int64) error {
	served, bags, err := x.readBuckets(ctx)
	if err != nil {
		return err
	}
	all, err := x.c.Bags(ctx)
	if err != nil {
		return fmt.Errorf("list bags: %w", err)
	}
	objects := map[chain.ObjectID]chain.DataObject{}
	elsewhere := map[chain.ObjectID]chain.BagID{}
	for _, b := range all {
		if b.ObjectsCount == 0 {
			continue
		}
		objs, err := x.c.Objects(ctx, b.ID)
		if err != nil && !errors.Is(err, chain.ErrNotFound) {
			return fmt.Errorf("objects of bag %s: %w", b.ID, err)
		}
		for _, o := range objs {
			if bags[b.ID] {
				objects[o.ID] = o
			} else {
				elsewhere[o.ID] = b.ID
			}
		}
	}
	x.mu.Lock()
	var dropped []chain.ObjectID
	for id := range x.objects {
		if _, ok := objects[id]; !ok {
			dropped = append(dropped, id)
		}
	}
	x.served, x.bags, x.objects, x.elsewhere = served, bags, objects, elsewhere
	x.height = max(x.height, height)
	x.mu.Unlock()
	x.drop(dropped)
	x.log.Info("chain state loaded", "height", height, "buckets", len(served), "bags", len(bags), "objects", len(objects))
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

// drop tells the owner about objects no longer served.
func (x *index) drop(ids []chain.ObjectID) {
	if len(ids) > 0 {
		x.onDrop(ids)
	}
}

// apply applies one block's events.
func (x *index) apply(ctx context.Context, be chain.BlockEvents) {
	reload := false
	var deletedBags []chain.BagID
	for _, e := range be.Events {
		switch e.Type {
		case "ObjectsRegistered":
			var ev chain.ObjectsRegistered
			if e.Decode(&ev) == nil {
				x.registered(ev)
			}
		case "ObjectsAccepted":
			var ev chain.ObjectsAccepted
			if e.Decode(&ev) == nil {
				x.accepted(ev)
			}
		case "ObjectsDeleted":
			var ev chain.ObjectsDeleted
			if e.Decode(&ev) == nil {
				x.deleted(ev.Objects)
			}
		case "BagDeleted":
			var ev chain.BagDeleted
			if e.Decode(&ev) == nil {
				deletedBags = append(deletedBags, ev.Bag)
			}
			reload = true
		case "BagCreated", "DistributionBagBucketsUpdated", "DistributionBucketModeUpdated",
			"DistributionBucketDeleted", "DistributionOperatorRemoved", "DistributionInvitationAccepted":
			reload = true
		case "StorageBagBucketsUpdated":
			var ev chain.StorageBagBucketsUpdated
			if e.Decode(&ev) == nil {
				x.onSources(&ev.Bag)
			}
		case "StorageOperatorMetadataSet", "StorageOperatorRemoved", "StorageInvitationAccepted", "StorageBucketDeleted":
			x.onSources(nil)
		}
	}
	if reload {
		if err := x.rebucket(ctx); err != nil {
			x.log.Warn("reload buckets", "height", be.Height, "err", err)
		}
	}
	for _, b := range deletedBags {
		x.bagDeleted(b)
	}
	x.mu.Lock()
	x.height = max(x.height, be.Height)
	x.mu.Unlock()
}

func (x *index) registered(ev chain.ObjectsRegistered) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, o := range ev.Objects {
		if x.bags[ev.Bag] {
			if _, ok := x.objects[o.ID]; !ok {
				x.objects[o.ID] = o
			}
		} else {
			x.elsewhere[o.ID] = ev.Bag
		}
	}
}

func (x *index) accepted(ev chain.ObjectsAccepted) {
	x.mu.Lock()
	var newly []chain.DataObject
	for _, id := range ev.Objects {
		if o, ok := x.objects[id]; ok && !o.Accepted {
			o.Accepted = true
			x.objects[id] = o
			newly = append(newly, o)
		}
	}
	x.mu.Unlock()
	if len(newly) > 0 {
		x.onAccepted(newly)
	}
}

// bagDeleted forgets the objects of a deleted bag (served ones leave with
// the reload of the buckets first).
func (x *index) bagDeleted(bag chain.BagID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, b := range x.elsewhere {
		if b == bag {
			delete(x.elsewhere, id)
		}
	}
}

func (x *index) deleted(ids []chain.ObjectID) {
	x.mu.Lock()
	var dropped []chain.ObjectID
	for _, id := range ids {
		if _, ok := x.objects[id]; ok {
			dropped = append(dropped, id)
		}
		delete(x.objects, id)
		delete(x.elsewhere, id)
	}
	x.mu.Unlock()
	x.drop(dropped)
}

// rebucket reads the node's buckets again: bags that joined are loaded,
// bags that left have their objects dropped.
func (x *index) rebucket(ctx context.Context) error {
	served, bags, err := x.readBuckets(ctx)
	if err != nil {
		return err
	}
	x.mu.RLock()
	var added []chain.BagID
	for b := range bags {
		if !x.bags[b] {
			added = append(added, b)
		}
	}
	x.mu.RUnlock()
	loaded := map[chain.BagID][]chain.DataObject{}
	for _, b := range added {
		objs, err := x.c.Objects(ctx, b)
		if err != nil && !errors.Is(err, chain.ErrNotFound) {
			return fmt.Errorf("objects of bag %s: %w", b, err)
		}
		loaded[b] = objs
	}
	x.mu.Lock()
	var dropped []chain.ObjectID
	for id, o := range x.objects {
		if !bags[o.Bag] {
			dropped = append(dropped, id)
			delete(x.objects, id)
			x.elsewhere[id] = o.Bag
		}
	}
	for b, objs := range loaded {
		for _, o := range objs {
			delete(x.elsewhere, o.ID)
			x.objects[o.ID] = o
		}
		_ = b
	}
	x.served, x.bags = served, bags
	x.mu.Unlock()
	x.drop(dropped)
	return nil
}
