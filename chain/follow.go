package chain

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Following the chain by deltas. Block events are not covered by the app
// hash: CometBFT's headers commit to each transaction's result code and
// data, not to its events, so an RPC endpoint can forge or hide them. A
// node that follows the chain therefore takes events as hints of what to
// read again — Touched lists what a block's events name — and reads that
// through its Client, whose reads are proven over a remote endpoint
// (chain/rpc.Open): ObjectsByID reads the objects named. Proven answers
// trail the chain's head by a block (the one its last signed header
// covers): read what block h touched once block h+1 is committed.

// Touched is what a block's events name. An event whose bag ID does not
// validate names nothing.
type Touched struct {
	// Objects are the objects registered, accepted or deleted, by the bag
	// the event names; Registered, Accepted and Deleted tell which events
	// named each (object IDs are unique across bags).
	Objects                       map[BagID][]ObjectID
	Registered, Accepted, Deleted map[ObjectID]bool
	// Bags are the bags created, deleted or moved between buckets;
	// DeletedBags those of them said deleted.
	Bags, DeletedBags []BagID
	// StorageBuckets and DistributionBuckets are the buckets whose state
	// changed: their bags, status, limits or operator.
	StorageBuckets      []StorageBucketID
	DistributionBuckets []DistributionBucketID
	// StorageOperators are the storage buckets whose operator changed
	// (invited, accepted, removed, its metadata set) or that were deleted:
	// who serves their bags, and where.
	StorageOperators []StorageBucketID
}

// Empty reports whether nothing is touched.
func (t Touched) Empty() bool {
	return len(t.Objects) == 0 && len(t.Bags) == 0 && len(t.StorageBuckets) == 0 && len(t.DistributionBuckets) == 0
}

// TouchedBy returns what events name, each ID once (object IDs ascending,
// the others in order). Events it cannot decode are skipped (they name
// nothing a node can re-read).
func TouchedBy(events []Event) Touched {
	t := Touched{Objects: map[BagID][]ObjectID{}, Registered: map[ObjectID]bool{}, Accepted: map[ObjectID]bool{}, Deleted: map[ObjectID]bool{}}
	for _, e := range events {
		if !t.addObjects(e) && !t.addBag(e) {
			t.addBucket(e)
		}
	}
	for bag, ids := range t.Objects {
		t.Objects[bag] = compactIDs(ids)
	}
	t.Bags, t.DeletedBags = uniq(t.Bags), uniq(t.DeletedBags)
	t.StorageBuckets, t.StorageOperators = uniq(t.StorageBuckets), uniq(t.StorageOperators)
	t.DistributionBuckets = uniq(t.DistributionBuckets)
	return t
}

// addObjects adds what an object event names and reports whether e is one.
func (t *Touched) addObjects(e Event) bool {
	var bag BagID
	var ids []ObjectID
	var kind map[ObjectID]bool // stays nil when e does not decode
	switch e.Type {
	case ObjectsRegistered{}.EventType():
		var v ObjectsRegistered
		if e.Decode(&v) == nil {
			bag, kind = v.Bag, t.Registered
			for _, o := range v.Objects {
				ids = append(ids, o.ID)
			}
		}
	case ObjectsAccepted{}.EventType():
		var v ObjectsAccepted
		if e.Decode(&v) == nil {
			bag, ids, kind = v.Bag, v.Objects, t.Accepted
		}
	case ObjectsDeleted{}.EventType():
		var v ObjectsDeleted
		if e.Decode(&v) == nil {
			bag, ids, kind = v.Bag, v.Objects, t.Deleted
		}
	default:
		return false
	}
	if kind == nil || bag.Validate() != nil {
		return true
	}
	t.Objects[bag] = append(t.Objects[bag], ids...)
	for _, id := range ids {
		kind[id] = true
	}
	return true
}

// addBag adds what a bag event names and reports whether e is one.
func (t *Touched) addBag(e Event) bool {
	switch e.Type {
	case BagCreated{}.EventType(), BagDeleted{}.EventType():
		var v struct { // the fields BagCreated and BagDeleted share
			Bag                 BagID                  `json:"bag"`
			StorageBuckets      []StorageBucketID      `json:"storageBuckets"`
			DistributionBuckets []DistributionBucketID `json:"distributionBuckets"`
		}
		if e.Decode(&v) == nil && v.Bag.Validate() == nil {
			t.Bags = append(t.Bags, v.Bag)
			t.StorageBuckets = append(t.StorageBuckets, v.StorageBuckets...)
			t.DistributionBuckets = append(t.DistributionBuckets, v.DistributionBuckets...)
			if e.Type == (BagDeleted{}).EventType() {
				t.DeletedBags = append(t.DeletedBags, v.Bag)
			}
		}
	case StorageBagBucketsUpdated{}.EventType():
		var v StorageBagBucketsUpdated
		if e.Decode(&v) == nil && v.Bag.Validate() == nil {
			t.Bags = append(t.Bags, v.Bag)
			t.StorageBuckets = append(append(t.StorageBuckets, v.Added...), v.Removed...)
		}
	case DistributionBagBucketsUpdated{}.EventType():
		var v DistributionBagBucketsUpdated
		if e.Decode(&v) == nil && v.Bag.Validate() == nil {
			t.Bags = append(t.Bags, v.Bag)
			t.DistributionBuckets = append(append(t.DistributionBuckets, v.Added...), v.Removed...)
		}
	default:
		return false
	}
	return true
}

// addBucket adds the bucket a bucket event names.
func (t *Touched) addBucket(e Event) {
	var v struct {
		Bucket *json.RawMessage `json:"bucket"`
	}
	if e.Decode(&v) != nil || v.Bucket == nil {
		return
	}
	if isStorageBucketEvent(e.Type) {
		var id StorageBucketID
		if json.Unmarshal(*v.Bucket, &id) == nil {
			t.StorageBuckets = append(t.StorageBuckets, id)
			if isStorageOperatorEvent(e.Type) {
				t.StorageOperators = append(t.StorageOperators, id)
			}
		}
	} else if isDistributionBucketEvent(e.Type) {
		var id DistributionBucketID
		if json.Unmarshal(*v.Bucket, &id) == nil {
			t.DistributionBuckets = append(t.DistributionBuckets, id)
		}
	}
}

func isStorageBucketEvent(typ string) bool {
	switch typ {
	case StorageBucketCreated{}.EventType(), StorageBucketStatusUpdated{}.EventType(), StorageBucketVoucherLimitsSet{}.EventType():
		return true
	}
	return isStorageOperatorEvent(typ)
}

// isStorageOperatorEvent reports whether typ changes who operates a storage
// bucket, or where: the providers of its bags.
func isStorageOperatorEvent(typ string) bool {
	switch typ {
	case StorageBucketDeleted{}.EventType(), StorageOperatorInvited{}.EventType(), StorageInvitationCancelled{}.EventType(),
		StorageInvitationAccepted{}.EventType(), StorageOperatorRemoved{}.EventType(), StorageOperatorMetadataSet{}.EventType():
		return true
	}
	return false
}

func isDistributionBucketEvent(typ string) bool {
	switch typ {
	case DistributionBucketCreated{}.EventType(), DistributionBucketDeleted{}.EventType(), DistributionBucketStatusUpdated{}.EventType(),
		DistributionBucketModeUpdated{}.EventType(), DistributionOperatorInvited{}.EventType(), DistributionInvitationCancelled{}.EventType(),
		DistributionInvitationAccepted{}.EventType(), DistributionOperatorRemoved{}.EventType(), DistributionOperatorMetadataSet{}.EventType():
		return true
	}
	return false
}

func compactIDs(ids []ObjectID) []ObjectID {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// uniq keeps the first of each value, in order.
func uniq[T comparable](xs []T) []T {
	seen := make(map[T]bool, len(xs))
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ObjectsReader is what ObjectsByID reads through; *Client satisfies it.
type ObjectsReader interface {
	Bag(ctx context.Context, id BagID) (Bag, error)
	ObjectsPage(ctx context.Context, bag BagID, p PageRequest) (Page[DataObject], error)
	DataObject(ctx context.Context, bag BagID, id ObjectID) (DataObject, error)
}

var _ ObjectsReader = (*Client)(nil)

// NotFoundReads is what a read of an object that is gone costs, in reads
// of a page: a proven client asks a not-found again after the next block
// (chain/rpc.Proven), up to the empty-block interval on an idle chain,
// while a page comes at once.
const NotFoundReads = 20

// ByID says how ObjectsByID reads.
type ByID struct {
	// Width is how many objects are read at once (1 when below).
	Width int
	// Deleted is how many of the IDs are likely gone (an event named them
	// deleted): each round of their reads costs NotFoundReads, so they
	// favour reading the bag's pages.
	Deleted int
	// ReadTimeout bounds each read (none when 0).
	ReadTimeout time.Duration
}

// ObjectsByID reads the named objects of a bag, as a follower re-reads what
// an event touched: the objects the chain holds (ascending) and the IDs it
// does not (deleted, or never there; the whole bag gone counts as each of
// its objects gone). It reads whichever takes fewer rounds: the objects one
// by one, how.Width at once, or the bag's pages in order up to the last
// ID. Over a proving transport a not-found is one the validators signed.
func ObjectsByID(ctx context.Context, r ObjectsReader, bag BagID, ids []ObjectID, how ByID) (found []DataObject, missing []ObjectID, err error) {
	ids = compactIDs(slices.Clone(ids))
	if len(ids) == 0 {
		return nil, nil, nil
	}
	w := max(how.Width, 1)
	rctx, cancel := how.read(ctx)
	b, err := r.Bag(rctx, bag)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ids, nil
	case err != nil:
		return nil, nil, fmt.Errorf("read bag %s: %w", bag, err)
	}
	rounds := uint64((len(ids)+w-1)/w + (how.Deleted+w-1)/w*NotFoundReads)
	if pages := b.ObjectsCount/MaxPageLimit + 1; pages < rounds {
		return listObjects(ctx, r, bag, ids, how)
	}
	return readObjects(ctx, r, bag, ids, how, w)
}

// read returns ctx bounded by how.ReadTimeout.
func (how ByID) read(ctx context.Context) (context.Context, context.CancelFunc) {
	if how.ReadTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, how.ReadTimeout)
}

// listObjects pages through bag's objects (by ID) up to the last of ids
// (ascending).
func listObjects(ctx context.Context, r ObjectsReader, bag BagID, ids []ObjectID, how ByID) (found []DataObject, missing []ObjectID, err error) {
	want := make(map[ObjectID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	last := ids[len(ids)-1]
	p := PageRequest{Limit: MaxPageLimit}
	for len(want) > 0 {
		rctx, cancel := how.read(ctx)
		pg, err := r.ObjectsPage(rctx, bag, p)
		cancel()
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the objects of bag %s: %w", bag, err)
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

// readObjects reads ids of bag one by one, w at once.
func readObjects(ctx context.Context, r ObjectsReader, bag BagID, ids []ObjectID, how ByID, w int) (found []DataObject, missing []ObjectID, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w)
	for _, id := range ids {
		g.Go(func() error {
			rctx, cancel := how.read(gctx)
			o, err := r.DataObject(rctx, bag, id)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNotFound):
				missing = append(missing, id)
			case err != nil:
				return fmt.Errorf("read object %d of bag %s: %w", id, bag, err)
			case o.ID == id:
				found = append(found, o)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(found, func(a, b DataObject) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(missing)
	return found, missing, nil
}
