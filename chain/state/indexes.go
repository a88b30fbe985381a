package state

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/satchel-net/satchel/chain"
)

// Indexes. They are state like any other (in the tree, so pages over them
// are proven), but no rule writes them: at the end of a block (and of
// genesis) deriveIndexes compares every written object and bucket record
// with its committed version and moves the index entries it implies.
// Values are empty; the key is the entry.
const (
	keyIndex = "s/ix/"
	// keyPending + bag 0x00 id: objects not accepted yet.
	keyPending = "s/ix/pend/"
	// keyByCID + content ID 0x00 bag 0x00 id: objects by content ID.
	keyByCID = "s/ix/cid/"
	// keyObjectBag + id + bag: the bag of an object (object IDs are
	// global). A state from before this index has no entries for the
	// objects registered then (see QueryObjectByID); one started with it
	// has keyObjectsIndexed.
	keyObjectBag = "s/ix/obj/"
	// keyWorkerSB + worker id + bucket id: storage buckets of a storage
	// worker (operating or invited).
	keyWorkerSB = "s/ix/wsb/"
	// keyWorkerDB + worker id + family id + index: distribution buckets of
	// a distribution worker (operating or invited).
	keyWorkerDB = "s/ix/wdb/"
)

func pendingPrefix(b chain.BagID) string { return keyPending + string(b) + "\x00" }
func pendingKey(b chain.BagID, id chain.ObjectID) string {
	return pendingPrefix(b) + u64(uint64(id))
}
func byCIDPrefix(cid string) string { return keyByCID + cid + "\x00" }
func byCIDKey(cid string, b chain.BagID, id chain.ObjectID) string {
	return byCIDPrefix(cid) + string(b) + "\x00" + u64(uint64(id))
}
func objectBagPrefix(id chain.ObjectID) string { return keyObjectBag + u64(uint64(id)) }
func objectBagKey(id chain.ObjectID, b chain.BagID) string {
	return objectBagPrefix(id) + string(b)
}
func workerSBPrefix(w chain.WorkerID) string { return keyWorkerSB + u64(uint64(w)) }
func workerDBPrefix(w chain.WorkerID) string { return keyWorkerDB + u64(uint64(w)) }

// indexKeys returns the index entries the record at key implies; the
// object-ID entry only when objectIDs (the chain runs VersionObjectIndex).
func indexKeys(key string, value []byte, objectIDs bool) ([]string, error) {
	switch {
	case strings.HasPrefix(key, keyObject):
		var o chain.DataObject
		if err := json.Unmarshal(value, &o); err != nil {
			return nil, err
		}
		out := []string{byCIDKey(o.ContentID, o.Bag, o.ID)}
		if objectIDs {
			out = append(out, objectBagKey(o.ID, o.Bag))
		}
		if !o.Accepted {
			out = append(out, pendingKey(o.Bag, o.ID))
		}
		return out, nil
	case strings.HasPrefix(key, keySBucket):
		var b chain.StorageBucket
		if err := json.Unmarshal(value, &b); err != nil {
			return nil, err
		}
		if b.Operator == nil {
			return nil, nil
		}
		return []string{workerSBPrefix(*b.Operator) + u64(uint64(b.ID))}, nil
	case strings.HasPrefix(key, keyDBucket):
		var b chain.DistributionBucket
		if err := json.Unmarshal(value, &b); err != nil {
			return nil, err
		}
		var out []string
		add := func(w chain.WorkerID) {
			out = append(out, workerDBPrefix(w)+u64(uint64(b.ID.Family))+u64(b.ID.Index))
		}
		for _, o := range b.Operators {
			add(o.Worker)
		}
		for _, w := range b.Invitations {
			add(w)
		}
		return out, nil
	}
	return nil, nil
}

// deriveIndexes moves the index entries of every indexed record c wrote,
// comparing with c's parent (the committed state). The object-ID index is
// kept only by a chain that has it from genesis (keyObjectsIndexed): an
// older chain's blocks replay to the app hashes they had.
func deriveIndexes(c *cache) error {
	_, objectIDs, err := c.get(keyObjectsIndexed)
	if err != nil {
		return err
	}
	for _, k := range c.sortedKeys() {
		if !strings.HasPrefix(k, keyObject) && !strings.HasPrefix(k, keySBucket) && !strings.HasPrefix(k, keyDBucket) {
			continue
		}
		var before, after []string
		old, ok, err := c.parent.get(k)
		if err != nil {
			return err
		}
		if ok {
			if before, err = indexKeys(k, old, objectIDs); err != nil {
				return errInternal(err)
			}
		}
		if v := c.writes[k]; v != nil {
			if after, err = indexKeys(k, v, objectIDs); err != nil {
				return errInternal(err)
			}
		}
		for _, ix := range before {
			if !slices.Contains(after, ix) {
				c.del(ix)
			}
		}
		for _, ix := range after {
			if !slices.Contains(before, ix) {
				c.set(ix, nil)
			}
		}
	}
	return nil
}
