package state

import (
	"github.com/satchel-net/satchel/chain"
)

// Pending objects expire: registerDataObjects stamps each object with
// ExpiresAt = its height + Limits.PendingObjectExpiry and indexes it under
// keyPendingExpiry by that height; accepting or deleting it drops the index
// entry. At the end of every block, expirePending removes the objects
// indexed at the block's height that are still pending, releasing their
// voucher use like a deletion. Each height is finalized exactly once, so
// scanning the one height's prefix visits every entry.
const keyPendingExpiry = "s/pexp/"

func pendingExpiryPrefix(h int64) string { return keyPendingExpiry + u64(uint64(h)) }

func pendingExpiryKey(h int64, b chain.BagID, id chain.ObjectID) string {
	return pendingExpiryPrefix(h) + string(b) + "\x00" + u64(uint64(id))
}

// indexPending records o's expiry; o.ExpiresAt must be set.
func (x *execCtx) indexPending(o chain.DataObject) {
	x.s.c.set(pendingExpiryKey(o.ExpiresAt, o.Bag, o.ID), []byte{1})
}

// unindexPending drops o's expiry entry (no-op for objects without one).
func (x *execCtx) unindexPending(o chain.DataObject) {
	if o.ExpiresAt > 0 {
		x.s.c.del(pendingExpiryKey(o.ExpiresAt, o.Bag, o.ID))
	}
}

// expiryHeight is the height at whose end an object registered now expires.
func (x *execCtx) expiryHeight(p *paramsRecord) int64 {
	return x.block.Height + int64(p.Limits.PendingObjectExpiry)
}

// expirePending removes the objects whose expiry is this block's height and
// that are still pending, bag by bag in key order, emitting one
// ObjectsDeleted{Reason: expired} per bag.
func (x *execCtx) expirePending() error {
	entries, err := x.s.c.scan(pendingExpiryPrefix(x.block.Height))
	if err != nil {
		return err
	}
	var (
		bag  chain.BagID
		objs []chain.DataObject
	)
	flush := func() error {
		if len(objs) == 0 {
			return nil
		}
		ids := make([]chain.ObjectID, len(objs))
		for i, o := range objs {
			ids[i] = o.ID
		}
		if err := x.removeObjects(bag, objs); err != nil {
			return err
		}
		x.emit(chain.ObjectsDeleted{Bag: bag, Objects: ids, Reason: chain.DeletedExpired})
		objs = objs[:0]
		return nil
	}
	prefix := len(pendingExpiryPrefix(x.block.Height))
	for _, e := range entries {
		x.s.c.del(e.key)
		rest := e.key[prefix:]
		if len(rest) < 9 || rest[len(rest)-9] != 0 {
			continue // not a key this file wrote
		}
		b := chain.BagID(rest[:len(rest)-9])
		id := chain.ObjectID(beUint(rest[len(rest)-8:]))
		var o chain.DataObject
		ok, err := x.s.getJSON(objectKey(b, id), &o)
		if err != nil {
			return err
		}
		if !ok || o.Accepted || o.ExpiresAt != x.block.Height {
			continue // deleted, accepted or re-stamped since
		}
		if b != bag {
			if err := flush(); err != nil {
				return err
			}
			bag = b
		}
		objs = append(objs, o)
	}
	return flush()
}

// removeObjects deletes objects of bag (loaded, all of bag) and releases
// their voucher use in every storage bucket of the bag and in the bag's
// counts. It emits nothing.
func (x *execCtx) removeObjects(bagID chain.BagID, objs []chain.DataObject) error {
	bag, err := x.bag(bagID)
	if err != nil {
		return err
	}
	var count, size uint64
	for _, o := range objs {
		count++
		size += o.Size
		x.unindexPending(o)
		x.s.c.del(objectKey(bag.ID, o.ID))
	}
	for _, id := range bag.StorageBuckets {
		b, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		if b.Voucher.ObjectsUsed, err = checkedSub(b.Voucher.ObjectsUsed, count, "voucher objects used"); err != nil {
			return err
		}
		if b.Voucher.SizeUsed, err = checkedSub(b.Voucher.SizeUsed, size, "voucher size used"); err != nil {
			return err
		}
		if err := x.putStorageBucket(b); err != nil {
			return err
		}
	}
	if bag.ObjectsCount, err = checkedSub(bag.ObjectsCount, count, "bag objects count"); err != nil {
		return err
	}
	if bag.ObjectsSize, err = checkedSub(bag.ObjectsSize, size, "bag objects size"); err != nil {
		return err
	}
	return x.putBag(bag)
}

func (x *execCtx) setPendingObjectExpiry(m chain.MsgSetPendingObjectExpiry) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.PendingObjectExpiry = m.Blocks
	return x.limitsUpdated()
}
