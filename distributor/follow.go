package distributor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/ctxsleep"
)

// Following the chain. Block events are not proven (an RPC endpoint can
// forge or hide them): the index takes them as hints of what to read
// again through its chain reader, proven over a remote endpoint, and acts
// only on what it reads. A proven read answers at the height the last
// signed header covers, one below the chain's head, so the events of
// block h are handled once block h+1 is committed.

// How one block's hints are read.
const (
	// hintReaders bounds the object reads one block's hints run at once.
	hintReaders = 8
	// hintAttempts bounds the tries of one block's reads, hintBackoff
	// after the first failure and doubled after each, before the follower
	// reloads its whole view: an endpoint that fails a read now and then
	// costs a retry, not a reload.
	hintAttempts = 4
	hintBackoff  = 250 * time.Millisecond
)

// How the follower tries again after it failed: followBackoff, doubled
// per failure up to maxFollowBackoff; a follow that lasted
// maxFollowBackoff starts over from followBackoff. An unreachable chain
// node costs a few reads a minute, and a log line a minute (chainHealth).
const (
	followBackoff    = time.Second
	maxFollowBackoff = 30 * time.Second
)

// run loads the chain's state and follows its blocks until ctx ends,
// subscribing again (and reloading) when the subscription fails or a
// block's reads keep failing, after a backoff.
func (x *index) run(ctx context.Context) {
	wait := x.backoff
	for ctx.Err() == nil {
		t0 := time.Now()
		err := x.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(t0) >= x.maxBackoff {
			wait = x.backoff
		}
		x.health.fail("the chain's blocks", err)
		x.log.Debug("following the chain failed; reloading its view", "err", err, "retry_in", wait)
		ctxsleep.Sleep(ctx, wait) // the loop ends when ctx does
		wait = min(2*wait, x.maxBackoff)
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
	x.health.ok()
	// The load reads no providers: forget those of every bag, which the
	// blocks not followed (one held back when a subscription failed
	// included) may have changed.
	x.onSources(nil)
	select {
	case <-x.ready:
	default:
		close(x.ready)
	}
	proven := info.Height
	var held *chain.BlockEvents
	for be := range blocks {
		if held != nil {
			if err := x.settle(ctx, *held, &proven); err != nil {
				return fmt.Errorf("block %d: %w", held.Height, err)
			}
			x.health.ok()
		}
		held = &be
	}
	return <-errc
}

// settle applies block be and raises the height of the last block read,
// trying the reads again with backoff (hintAttempts in all) when they fail.
// proven is the chain's height as a proven read last showed it.
func (x *index) settle(ctx context.Context, be chain.BlockEvents, proven *int64) error {
	wait := hintBackoff
	for attempt := 1; ; attempt++ {
		err := x.apply(ctx, be)
		if err == nil {
			err = x.raiseHeight(ctx, be.Height, proven)
		}
		if err == nil || attempt == hintAttempts {
			return err
		}
		x.log.Debug("reading a block's hints failed; trying again", "height", be.Height, "attempt", attempt, "err", err)
		if !ctxsleep.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait *= 2
	}
}

// raiseHeight records block h as read, up to the height a proven read
// shows: a block event's height is not proven.
func (x *index) raiseHeight(ctx context.Context, h int64, proven *int64) error {
	if h > *proven {
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		info, err := x.c.Info(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("chain info: %w", err)
		}
		*proven = max(*proven, info.Height)
	}
	x.mu.Lock()
	x.height = max(x.height, min(h, *proven))
	x.mu.Unlock()
	return nil
}

// apply reads again what one block's events name and applies what the
// reads show. A read that fails fails the block.
func (x *index) apply(ctx context.Context, be chain.BlockEvents) error {
	t := chain.TouchedBy(be.Events)
	for _, b := range t.Bags {
		x.onSources(&b)
	}
	if len(t.StorageOperators) > 0 {
		x.onSources(nil)
	}
	if slices.ContainsFunc(t.DistributionBuckets, func(b chain.DistributionBucketID) bool { return slices.Contains(x.id.Buckets, b) }) {
		if err := x.rebucket(ctx); err != nil {
			return fmt.Errorf("read the node's buckets: %w", err)
		}
	}
	for _, bag := range t.DeletedBags {
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
	if len(t.Objects) > 0 {
		return x.reread(ctx, t)
	}
	return nil
}

// reread reads the objects t names, bag by bag, and applies what the chain
// holds of them.
func (x *index) reread(ctx context.Context, t chain.Touched) error {
	var found []chain.DataObject
	missing := map[chain.BagID][]chain.ObjectID{}
	for bag, ids := range x.readBags(t.Objects) {
		how := chain.ByID{Width: hintReaders, ReadTimeout: recordTimeout}
		for _, id := range ids {
			if t.Deleted[id] {
				how.Deleted++
			}
		}
		f, m, err := chain.ObjectsByID(ctx, x.c, bag, ids, how)
		if err != nil {
			return err
		}
		found, missing[bag] = append(found, f...), m
	}
	x.confirm(found, missing, t)
	return nil
}

// readBags groups the objects named by the bag to read each in: the one
// the index holds it in (object IDs are global: an event naming another
// bag neither moves nor drops it), else the one named.
func (x *index) readBags(named map[chain.BagID][]chain.ObjectID) map[chain.BagID][]chain.ObjectID {
	out := map[chain.BagID][]chain.ObjectID{}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for bag, ids := range named {
		for _, id := range ids {
			b := bag
			if known, _, ok := x.bagOf(id); ok {
				b = known
			}
			out[b] = append(out[b], id)
		}
	}
	return out
}

// confirm applies what the chain holds of the objects read: found ones
// are in their bag (records of served ones kept, those seen accepted since
// they were registered warmed), missing ones gone from the bag they were
// read in.
func (x *index) confirm(found []chain.DataObject, missing map[chain.BagID][]chain.ObjectID, t chain.Touched) {
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
		if o.Accepted && t.Accepted[o.ID] && (prev == nil && t.Registered[o.ID] || prev != nil && !prev.obj.Accepted) {
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
