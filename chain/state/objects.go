package state

import (
	"github.com/satchel-net/satchel/chain"
)

// registerDataObjects registers pending objects in a bag. Every check runs
// before anything is written, and the transaction cache discards partial
// writes anyway, so a failure registers nothing.
func (x *execCtx) registerDataObjects(m chain.MsgRegisterDataObjects) error {
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	bag, err := x.bag(m.Bag)
	if err != nil {
		return err
	}
	if x.signer != bag.Owner {
		return chain.Errorf(chain.ErrUnauthorized, "only bag %s's owner %s may register objects in it; account %s is not the owner", bag.ID, bag.Owner, x.signer)
	}
	if p.UploadingBlocked {
		return chain.Errorf(chain.ErrUploadingBlocked, "uploading is blocked network-wide by the storage lead; try again when it is unblocked")
	}
	if uint64(len(m.Objects)) > p.Limits.MaxObjectsPerTx {
		return chain.Errorf(chain.ErrInvalid, "%d objects in one transaction, above the limit %d; split the batch", len(m.Objects), p.Limits.MaxObjectsPerTx)
	}
	var count, size uint64
	contentIDs := make([]string, 0, len(m.Objects))
	for i, o := range m.Objects {
		if o.Size == 0 {
			return chain.Errorf(chain.ErrZeroSize, "object %d (content ID %s) has size 0; empty files are not stored", i, o.ContentID)
		}
		if o.Size > p.Limits.MaxDataObjectSize {
			return chain.Errorf(chain.ErrObjectTooLarge, "object %d (content ID %s) is %d bytes, above the max data object size %d bytes", i, o.ContentID, o.Size, p.Limits.MaxDataObjectSize)
		}
		canon, err := chain.ValidateObjectContentID(o.ContentID)
		if err != nil {
			return chain.Errorf(chain.ErrBadContentID, "object %d: %v", i, err)
		}
		for _, form := range chain.BlacklistForms(canon) {
			if _, ok, err := x.s.c.get(blacklistKey(form)); err != nil {
				return err
			} else if ok {
				return chain.Errorf(chain.ErrBlacklisted, "object %d: content ID %s is blacklisted by the storage lead (as %s)", i, o.ContentID, form)
			}
		}
		contentIDs = append(contentIDs, canon)
		count++
		if size, err = checkedAdd(size, o.Size, "total object size"); err != nil {
			return err
		}
	}
	if len(bag.StorageBuckets) == 0 {
		return chain.Errorf(chain.ErrNoStorageBuckets, "bag %s is in no storage bucket, so nothing would store the objects; ask the storage lead to add it to one with update-bag", bag.ID)
	}
	buckets := make([]chain.StorageBucket, 0, len(bag.StorageBuckets))
	for _, id := range bag.StorageBuckets {
		b, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		if err := voucherRoom(bag.ID, id, b.Voucher, count, size); err != nil {
			return err
		}
		buckets = append(buckets, b)
	}
	for _, b := range buckets {
		b.Voucher.ObjectsUsed += count
		b.Voucher.SizeUsed += size
		if err := x.putStorageBucket(b); err != nil {
			return err
		}
	}
	bag.ObjectsCount += count
	bag.ObjectsSize += size
	if err := x.putBag(bag); err != nil {
		return err
	}
	ev := chain.ObjectsRegistered{Bag: bag.ID, Objects: make([]chain.DataObject, 0, len(m.Objects))}
	for i, o := range m.Objects {
		id, err := x.s.nextID(seqObject)
		if err != nil {
			return err
		}
		// Object IDs start at 1: on the wire, object 0 means "not
		// registered yet" (a streamed upload's session).
		obj := chain.DataObject{ID: chain.ObjectID(id + 1), Bag: bag.ID, Size: o.Size, ContentID: contentIDs[i], CreatedAt: x.block.Height, ExpiresAt: x.expiryHeight(p)}
		if err := x.s.setJSON(objectKey(bag.ID, obj.ID), obj); err != nil {
			return err
		}
		x.indexPending(obj)
		ev.Objects = append(ev.Objects, obj)
	}
	x.emit(ev)
	return nil
}

func (x *execCtx) object(bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	var o chain.DataObject
	ok, err := x.s.getJSON(objectKey(bag, id), &o)
	if err != nil {
		return o, err
	}
	if !ok {
		return o, chain.Errorf(chain.ErrObjectNotFound, "data object %d does not exist in bag %s", id, bag)
	}
	return o, nil
}

// acceptPendingDataObjects marks objects accepted. The signer must be the
// transactor account (or the role account) of the bucket's active operator,
// and the bucket must store the bag.
func (x *execCtx) acceptPendingDataObjects(m chain.MsgAcceptPendingDataObjects) error {
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	b, w, err := x.activeStorageOperator(m.Bucket, m.Worker)
	if err != nil {
		return err
	}
	if x.signer != b.Transactor && x.signer != w.Account {
		return chain.Errorf(chain.ErrUnauthorized, "only storage bucket %d's transactor account %s (or worker %d's role account) may accept its objects; account %s is neither", b.ID, b.Transactor, w.ID, x.signer)
	}
	bag, err := x.bag(m.Bag)
	if err != nil {
		return err
	}
	if !bag.HasStorageBucket(b.ID) {
		return chain.Errorf(chain.ErrBagNotInBucket, "bag %s is not stored by storage bucket %d, so its operator cannot accept its objects", bag.ID, b.ID)
	}
	if uint64(len(m.Objects)) > p.Limits.MaxObjectsPerTx {
		return chain.Errorf(chain.ErrInvalid, "%d objects in one transaction, above the limit %d; split the batch", len(m.Objects), p.Limits.MaxObjectsPerTx)
	}
	ev := chain.ObjectsAccepted{Bag: bag.ID, Bucket: b.ID, Worker: w.ID, Objects: []chain.ObjectID{}}
	for _, id := range m.Objects {
		o, err := x.object(bag.ID, id)
		if err != nil {
			return err
		}
		if o.Accepted {
			continue
		}
		x.unindexPending(o)
		o.Accepted, o.ExpiresAt = true, 0
		if err := x.s.setJSON(objectKey(bag.ID, id), o); err != nil {
			return err
		}
		ev.Objects = append(ev.Objects, id)
	}
	if len(ev.Objects) > 0 {
		x.emit(ev)
	}
	return nil
}

// deleteDataObjects deletes objects of a bag (owner or storage lead) and
// refunds their voucher use in every storage bucket of the bag (see
// removeObjects).
func (x *execCtx) deleteDataObjects(m chain.MsgDeleteDataObjects) error {
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	bag, err := x.bag(m.Bag)
	if err != nil {
		return err
	}
	if x.signer != bag.Owner && x.signer != p.StorageLead {
		return chain.Errorf(chain.ErrUnauthorized, "only bag %s's owner %s (or the storage lead) may delete its objects; account %s is neither", bag.ID, bag.Owner, x.signer)
	}
	if uint64(len(m.Objects)) > p.Limits.MaxObjectsPerTx {
		return chain.Errorf(chain.ErrInvalid, "%d objects in one transaction, above the limit %d; split the batch", len(m.Objects), p.Limits.MaxObjectsPerTx)
	}
	objs := make([]chain.DataObject, 0, len(m.Objects))
	for _, id := range m.Objects {
		o, err := x.object(bag.ID, id)
		if err != nil {
			return err
		}
		objs = append(objs, o)
	}
	if err := x.removeObjects(bag.ID, objs); err != nil {
		return err
	}
	x.emit(chain.ObjectsDeleted{Bag: bag.ID, Objects: m.Objects})
	return nil
}
