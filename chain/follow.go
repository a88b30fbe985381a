package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Following the chain by deltas. Block events are not covered by the app
// hash: CometBFT's headers commit to each transaction's result code and
// data, not to its events, so an RPC endpoint can forge or hide them. A
// node that follows the chain therefore takes events as hints of what to
// read again — Touched lists what a block's events name — and reads that
// through its Client, whose reads are proven over a remote endpoint
// (chain/rpc.Open). Proven answers trail the chain's head by a block (the
// one its last signed header covers): read what block h touched once block
// h+1 is committed.

// Touched is what a block's events name: the objects registered, accepted
// or deleted, by bag; the bags created, deleted or moved between buckets;
// the buckets whose state changed.
type Touched struct {
	Objects             map[BagID][]ObjectID
	Bags                []BagID
	StorageBuckets      []StorageBucketID
	DistributionBuckets []DistributionBucketID
}

// Empty reports whether nothing is touched.
func (t Touched) Empty() bool {
	return len(t.Objects) == 0 && len(t.Bags) == 0 && len(t.StorageBuckets) == 0 && len(t.DistributionBuckets) == 0
}

// TouchedBy returns what events name, each ID once, in order. Events it
// cannot decode are skipped (they name nothing a node can re-read).
func TouchedBy(events []Event) Touched {
	t := Touched{Objects: map[BagID][]ObjectID{}}
	objs := func(bag BagID, ids ...ObjectID) { t.Objects[bag] = append(t.Objects[bag], ids...) }
	for _, e := range events {
		switch e.Type {
		case ObjectsRegistered{}.EventType():
			var v ObjectsRegistered
			if e.Decode(&v) == nil {
				for _, o := range v.Objects {
					objs(v.Bag, o.ID)
				}
			}
		case ObjectsAccepted{}.EventType():
			var v ObjectsAccepted
			if e.Decode(&v) == nil {
				objs(v.Bag, v.Objects...)
			}
		case ObjectsDeleted{}.EventType():
			var v ObjectsDeleted
			if e.Decode(&v) == nil {
				objs(v.Bag, v.Objects...)
			}
		case BagCreated{}.EventType(), BagDeleted{}.EventType():
			var v struct { // the fields BagCreated and BagDeleted share
				Bag                 BagID                  `json:"bag"`
				StorageBuckets      []StorageBucketID      `json:"storageBuckets"`
				DistributionBuckets []DistributionBucketID `json:"distributionBuckets"`
			}
			if e.Decode(&v) == nil {
				t.Bags = append(t.Bags, v.Bag)
				t.StorageBuckets = append(t.StorageBuckets, v.StorageBuckets...)
				t.DistributionBuckets = append(t.DistributionBuckets, v.DistributionBuckets...)
			}
		case StorageBagBucketsUpdated{}.EventType():
			var v StorageBagBucketsUpdated
			if e.Decode(&v) == nil {
				t.Bags = append(t.Bags, v.Bag)
				t.StorageBuckets = append(append(t.StorageBuckets, v.Added...), v.Removed...)
			}
		case DistributionBagBucketsUpdated{}.EventType():
			var v DistributionBagBucketsUpdated
			if e.Decode(&v) == nil {
				t.Bags = append(t.Bags, v.Bag)
				t.DistributionBuckets = append(append(t.DistributionBuckets, v.Added...), v.Removed...)
			}
		default:
			var v struct {
				Bucket *json.RawMessage `json:"bucket"`
			}
			if e.Decode(&v) != nil || v.Bucket == nil {
				continue
			}
			if isStorageBucketEvent(e.Type) {
				var id StorageBucketID
				if json.Unmarshal(*v.Bucket, &id) == nil {
					t.StorageBuckets = append(t.StorageBuckets, id)
				}
			} else if isDistributionBucketEvent(e.Type) {
				var id DistributionBucketID
				if json.Unmarshal(*v.Bucket, &id) == nil {
					t.DistributionBuckets = append(t.DistributionBuckets, id)
				}
			}
		}
	}
	for bag, ids := range t.Objects {
		t.Objects[bag] = compactIDs(ids)
	}
	t.Bags = uniq(t.Bags)
	t.StorageBuckets = uniq(t.StorageBuckets)
	t.DistributionBuckets = uniq(t.DistributionBuckets)
	return t
}

func isStorageBucketEvent(typ string) bool {
	switch typ {
	case StorageBucketCreated{}.EventType(), StorageBucketDeleted{}.EventType(), StorageBucketStatusUpdated{}.EventType(),
		StorageBucketVoucherLimitsSet{}.EventType(), StorageOperatorInvited{}.EventType(), StorageInvitationCancelled{}.EventType(),
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

// ObjectsByID reads the named objects of a bag one by one, as a follower
// re-reads what an event touched: the objects the chain holds, by ID, and
// the IDs it answers not-found for (deleted, or never there; the whole bag
// gone counts as each of its objects gone). Over a proving transport a
// not-found is one the validators signed.
func (c *Client) ObjectsByID(ctx context.Context, bag BagID, ids []ObjectID) (found map[ObjectID]DataObject, missing []ObjectID, err error) {
	found = make(map[ObjectID]DataObject, len(ids))
	for _, id := range compactIDs(slices.Clone(ids)) {
		o, err := c.DataObject(ctx, bag, id)
		switch {
		case err == nil:
			found[id] = o
		case errors.Is(err, ErrNotFound):
			missing = append(missing, id)
		default:
			return nil, nil, fmt.Errorf("read object %d of bag %s: %w", id, bag, err)
		}
	}
	return found, missing, nil
}
