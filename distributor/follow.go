package distributor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
)

// Following the chain. Block events are not proven (an RPC endpoint can
// forge or hide them): the index takes them as hints of what to read
// again through its chain reader, proven over a remote endpoint, and acts
// only on what it reads. A proven read answers at the height the last
// signed header covers, one below the chain's head, so the events of
// block h are handled once block h+1 is committed.

// hintReaders bounds the object reads one block's hints run at once.
const hintReaders = 8

// notFoundReads is what a read of an object that is gone costs, in reads
// of a page: a proven client asks a not-found again after the next block
// (chain/rpc), up to the empty-block interval on an idle chain, while a
// page comes at once. Deletions are read by pages sooner for it.
const notFoundReads = 20

// run loads the chain's state and follows its blocks until ctx ends,
// subscribing again (and reloading) when the subscription or a read
// fails.
func (x *index) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := x.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		x.log.Warn("following the chain failed; reloading its view", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// follow subscribes from the head's block, loads the state, then applies
// every block's events once the next block is committed. Events of blocks
// the load already saw are applied again, which changes nothing: they are
// only hints.
func (x *index) follow(ctx context.Context) error {
	info, err := x.c.Info(ctx)
	if err != nil {
		return fmt.Errorf("chain info: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// From the head's own block: a proven load may show the state before it.
	blocks, errc := x.c.Subscribe(sctx, max(info.Height, 1))
	if err := x.load(ctx, info.Height); err != nil {
		return err
	}
	select {
	case <-x.ready:
	default:
		close(x.ready)
	}
	var held *chain.BlockEvents
	for be := range blocks {
		if held != nil {
			if err := x.apply(ctx, *held); err != nil {
				return fmt.Errorf("block %d: %w", held.Height, err)
			}
		}
		held = &be
	}
	// A block held back is read again after the reload.
	return <-errc
}

// hints is what one block's events name.
type hints struct {
	objects    map[chain.BagID][]chain.ObjectID // registered, accepted or deleted, by the bag named
	registered map[chain.ObjectID]bool          // named by ObjectsRegistered
	deleted    map[chain.ObjectID]bool          // named by ObjectsDeleted
	accepted   map[chain.ObjectID]bool          // named by ObjectsAccepted
	goneBags   []chain.BagID                    // named by BagDeleted
	buckets    bool                             // the node's buckets may have changed
	sourceBags []chain.BagID                    // whose storage buckets changed
	sources    bool                             // storage operators changed
}

// hintsOf returns what events name; a malformed bag ID names nothing to
// read.
func hintsOf(events []chain.Event) hints {
	h := hints{objects: map[chain.BagID][]chain.ObjectID{}, registered: map[chain.ObjectID]bool{}, accepted: map[chain.ObjectID]bool{},
		deleted: map[chain.ObjectID]bool{}}
	for _, e := range events {
		switch e.Type {
		case "ObjectsRegistered":
			var ev chain.ObjectsRegistered
			if e.Decode(&ev) == nil && ev.Bag.Validate() == nil {
				for _, o := range ev.Objects {
					h.objects[ev.Bag] = append(h.objects[ev.Bag], o.ID)
					h.registered[o.ID] = true
				}
			}
		case "ObjectsAccepted":
			var ev chain.ObjectsAccepted
			if e.Decode(&ev) == nil && ev.Bag.Validate() == nil {
				h.objects[ev.Bag] = append(h.objects[ev.Bag], ev.Objects...)
				for _, id := range ev.Objects {
					h.accepted[id] = true
				}
			}
		case "ObjectsDeleted":
			var ev chain.ObjectsDeleted
			if e.Decode(&ev) == nil && ev.Bag.Validate() == nil {
				h.objects[ev.Bag] = append(h.objects[ev.Bag], ev.Objects...)
				for _, id := range ev.Objects {
					h.deleted[id] = true
				}
			}
		case "BagDeleted":
			var ev chain.BagDeleted
			if e.Decode(&ev) == nil && ev.Bag.Validate() == nil {
				h.goneBags = append(h.goneBags, ev.Bag)
			}
			h.buckets = true
		case "BagCreated", "DistributionBagBucketsUpdated", "DistributionBucketModeUpdated",
			"DistributionBucketDeleted", "DistributionOperatorRemoved", "DistributionInvitationAccepted":
			h.buckets = true
		case "StorageBagBucketsUpdated":
			var ev chain.StorageBagBucketsUpdated
			if e.Decode(&ev) == nil {
				h.sourceBags = append(h.sourceBags, ev.Bag)
			}
		case "StorageOperatorMetadataSet", "StorageOperatorRemoved", "StorageInvitationAccepted", "StorageBucketDeleted":
			h.sources = true
		}
	}
	return h
}

// apply reads again what one block's events name and applies what the
// reads show. A read that fails fails the block: the caller reloads.
func (x *index) apply(ctx context.Context, be chain.BlockEvents) error {
	h := hintsOf(be.Events)
	for _, b := range h.sourceBags {
		x.onSources(&b)
	}
	if h.sources {
		x.onSources(nil)
	}
	if h.buckets {
		if err := x.rebucket(ctx); err != nil {
			return fmt.Errorf("read the node's buckets: %w", err)
		}
	}
	for _, bag := range h.goneBags {
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		_, err := x.c.Bag(rctx, bag)
		cancel()
		switch {
		case errors.Is(err, chain.ErrNotFound):
			x.bagDeleted(bag)
		case err != nil:
			return fmt.Errorf("read deleted bag %s: %w", bag, err)
		}
	}
	if len(h.objects) > 0 {
		if err := x.reread(ctx, h); err != nil {
			return err
		}
	}
	x.mu.Lock()
	x.height = max(x.height, be.Height)
	x.mu.Unlock()
	return nil
}

// reread reads the objects the hints name, bag by bag, and applies what
// the chain holds of them.
func (x *index) reread(ctx context.Context, h hints) error {
	var found []chain.DataObject
	missing := map[chain.BagID][]chain.ObjectID{}
	for bag, ids := range x.readBags(h.objects) {
		gone := 0
		for _, id := range ids {
			if h.deleted[id] {
				gone++
			}
		}
		f, m, err := x.readObjects(ctx, bag, ids, gone)
		if err != nil {
			return fmt.Errorf("read objects of bag %s: %w", bag, err)
		}
		found, missing[bag] = append(found, f...), m
	}
	x.confirm(found, missing, h)
	return nil
}

// readBags groups the objects named by the bag to read each in: the one
// the index holds it in (object IDs are global: an event naming another
// bag neither moves nor drops it), else the one named.
func (x *index) readBags(named map[chain.BagID][]chain.ObjectID) map[chain.BagID][]chain.ObjectID {
	out := map[chain.BagID][]chain.ObjectID{}
	x.mu.RLock()
	for bag, ids := range named {
		for _, id := range ids {
			b := bag
			if known, _, ok := x.bagOf(id); ok {
				b = known
			}
			out[b] = append(out[b], id)
		}
	}
	x.mu.RUnlock()
	for b, ids := range out {
		slices.Sort(ids)
		out[b] = slices.Compact(ids)
	}
	return out
}

// readObjects returns those of ids (ascending) that bag holds and those it
// does not, reading whichever takes fewer rounds of reads: the bag's pages
// one after the other, or the objects one by one, hintReaders at once
// (gone of them hinted deleted, each of whose rounds costs notFoundReads).
func (x *index) readObjects(ctx context.Context, bag chain.BagID, ids []chain.ObjectID, gone int) (found []chain.DataObject, missing []chain.ObjectID, err error) {
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	b, err := x.c.Bag(rctx, bag)
	cancel()
	switch {
	case errors.Is(err, chain.ErrNotFound):
		return nil, ids, nil
	case err != nil:
		return nil, nil, err
	}
	rounds := uint64(len(ids)+hintReaders-1)/hintReaders + uint64(gone+hintReaders-1)/hintReaders*notFoundReads
	if pages := b.ObjectsCount/chain.MaxPageLimit + 1; pages < rounds {
		return x.listObjects(ctx, bag, ids)
	}
	return x.objectsByID(ctx, bag, ids)
}

// listObjects pages through bag's objects (by ID) up to the last of ids.
func (x *index) listObjects(ctx context.Context, bag chain.BagID, ids []chain.ObjectID) (found []chain.DataObject, missing []chain.ObjectID, err error) {
	want := make(map[chain.ObjectID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	last := ids[len(ids)-1]
	p := chain.PageRequest{Limit: chain.MaxPageLimit}
	for len(want) > 0 {
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		pg, err := x.c.ObjectsPage(rctx, bag, p)
		cancel()
		if errors.Is(err, chain.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		for _, o := range pg.Items {
			if want[o.ID] {
				found = append(found, o)
				delete(want, o.ID)
			}
		}
		if pg.Next == "" || pg.Next == p.Cursor || len(pg.Items) == 0 || pg.Items[len(pg.Items)-1].ID >= last {
			break
		}
		p.Cursor = pg.Next
	}
	for _, id := range ids {
		if want[id] {
			missing = append(missing, id)
		}
	}
	return found, missing, nil
}

// objectsByID reads ids of bag one by one, hintReaders at once.
func (x *index) objectsByID(ctx context.Context, bag chain.BagID, ids []chain.ObjectID) (found []chain.DataObject, missing []chain.ObjectID, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hintReaders)
	for _, id := range ids {
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(gctx, recordTimeout)
			o, err := x.c.DataObject(rctx, bag, id)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, chain.ErrNotFound):
				missing = append(missing, id)
			case err != nil:
				return fmt.Errorf("object %d: %w", id, err)
			case o.ID == id:
				found = append(found, o)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return found, missing, nil
}

// confirm applies what the chain holds of the objects read: found ones
// are in their bag (records of served ones kept, those seen accepted since
// they were registered warmed), missing ones gone from the bag they were
// read in.
func (x *index) confirm(found []chain.DataObject, missing map[chain.BagID][]chain.ObjectID, h hints) {
	var newly []chain.DataObject
	var dropped []chain.ObjectID
	add := map[uint32][]uint64{}
	x.mu.Lock()
	x.gen++
	for _, o := range found {
		n := x.bagNumber(o.Bag)
		if cur, ok := x.runs.find(uint64(o.ID)); !ok || cur != n {
			add[n] = append(add[n], uint64(o.ID))
		}
		if !x.bags[o.Bag] {
			x.forget(o.ID)
			continue
		}
		prev := x.recs[o.ID]
		if prev == nil {
			prev = x.oldRecs[o.ID]
		}
		if o.Accepted && h.accepted[o.ID] && (prev == nil && h.registered[o.ID] || prev != nil && !prev.obj.Accepted) {
			newly = append(newly, o)
		}
		x.keep(newRecord(o))
	}
	for n, ids := range add {
		slices.Sort(ids)
		for _, r := range appendRuns(nil, n, ids) {
			x.runs.add(r.lo, uint64(r.n), n)
		}
	}
	for bag, ids := range missing {
		for _, id := range ids {
			known, served, ok := x.bagOf(id)
			if !ok || known != bag {
				continue
			}
			if served {
				dropped = append(dropped, id)
			}
			x.runs.remove(uint64(id), uint64(id)+1)
			x.forget(id)
		}
	}
	x.mu.Unlock()
	if len(dropped) > 0 {
		x.onDrop(dropped)
	}
	if len(newly) > 0 {
		x.onAccepted(newly)
	}
}

// bagNumber returns the number of bag, numbering it if new (under mu).
func (x *index) bagNumber(bag chain.BagID) uint32 {
	n, ok := x.bagNum[bag]
	if !ok {
		n = uint32(len(x.bagIDs))
		x.bagNum[bag], x.bagIDs = n, append(x.bagIDs, bag)
	}
	return n
}

// bagDeleted forgets the object IDs of a bag the chain no longer holds
// (served ones left with the reload of the buckets first).
func (x *index) bagDeleted(bag chain.BagID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if n, ok := x.bagNum[bag]; ok {
		x.runs.removeBag(n)
	}
	for id, rec := range x.recs {
		if rec.obj.Bag == bag {
			delete(x.recs, id)
		}
	}
	for id, rec := range x.oldRecs {
		if rec.obj.Bag == bag {
			delete(x.oldRecs, id)
		}
	}
}
