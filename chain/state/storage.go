package state

import (
	"slices"

	"github.com/satchel-net/satchel/chain"
)

func (x *execCtx) checkVoucherMax(p *paramsRecord, objects, size uint64) error {
	if objects > p.Limits.VoucherMaxObjects || size > p.Limits.VoucherMaxSize {
		return chain.Errorf(chain.ErrVoucherLimitTooHigh,
			"voucher limits %d objects / %d bytes exceed the global voucher max limits %d objects / %d bytes; lower them or raise the max with `satchel storage leader update-voucher-limits`",
			objects, size, p.Limits.VoucherMaxObjects, p.Limits.VoucherMaxSize)
	}
	return nil
}

// leadStorageBucket checks that the signer is the storage lead and loads
// a storage bucket.
func (x *execCtx) leadStorageBucket(id chain.StorageBucketID) (*paramsRecord, chain.StorageBucket, error) {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return nil, chain.StorageBucket{}, err
	}
	b, err := x.storageBucket(id)
	return p, b, err
}

func (x *execCtx) createStorageBucket(m chain.MsgCreateStorageBucket) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	if err := x.checkVoucherMax(p, m.ObjectsLimit, m.SizeLimit); err != nil {
		return err
	}
	id, err := x.s.nextID(seqStorageBucket)
	if err != nil {
		return err
	}
	b := chain.StorageBucket{
		ID:               chain.StorageBucketID(id),
		AcceptingNewBags: m.AcceptingNewBags,
		Voucher:          chain.Voucher{ObjectsLimit: m.ObjectsLimit, SizeLimit: m.SizeLimit},
		OperatorStatus:   chain.OperatorMissing,
	}
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageBucketCreated{Bucket: b.ID, AcceptingNewBags: b.AcceptingNewBags, ObjectsLimit: m.ObjectsLimit, SizeLimit: m.SizeLimit})
	if m.InviteWorker != nil {
		return x.inviteStorageBucketOperator(chain.MsgInviteStorageBucketOperator{Bucket: b.ID, Worker: *m.InviteWorker})
	}
	return nil
}

func (x *execCtx) deleteStorageBucket(m chain.MsgDeleteStorageBucket) error {
	_, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	if b.BagsCount > 0 {
		return chain.Errorf(chain.ErrBucketHasBags, "storage bucket %d still stores %s; remove them with update-bag first", b.ID, chain.Plural(int(b.BagsCount), "bag"))
	}
	switch b.OperatorStatus {
	case chain.OperatorActive:
		return chain.Errorf(chain.ErrBucketHasOperator, "storage bucket %d has operator worker %d; remove the operator first", b.ID, *b.Operator)
	case chain.OperatorInvited:
		return chain.Errorf(chain.ErrInvitationPending, "storage bucket %d has a pending invitation for worker %d; cancel it first", b.ID, *b.Operator)
	}
	x.s.c.del(sBucketKey(b.ID))
	x.emit(chain.StorageBucketDeleted{Bucket: b.ID})
	return nil
}

func (x *execCtx) updateStorageBucketStatus(m chain.MsgUpdateStorageBucketStatus) error {
	_, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	b.AcceptingNewBags = m.AcceptingNewBags
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageBucketStatusUpdated{Bucket: b.ID, AcceptingNewBags: b.AcceptingNewBags})
	return nil
}

func (x *execCtx) setStorageBucketVoucherLimits(m chain.MsgSetStorageBucketVoucherLimits) error {
	p, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	if err := x.checkVoucherMax(p, m.ObjectsLimit, m.SizeLimit); err != nil {
		return err
	}
	b.Voucher.ObjectsLimit, b.Voucher.SizeLimit = m.ObjectsLimit, m.SizeLimit
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageBucketVoucherLimitsSet{Bucket: b.ID, ObjectsLimit: m.ObjectsLimit, SizeLimit: m.SizeLimit})
	return nil
}

func (x *execCtx) inviteStorageBucketOperator(m chain.MsgInviteStorageBucketOperator) error {
	_, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	switch b.OperatorStatus {
	case chain.OperatorActive:
		return chain.Errorf(chain.ErrBucketHasOperator, "storage bucket %d already has operator worker %d; remove it before inviting another", b.ID, *b.Operator)
	case chain.OperatorInvited:
		return chain.Errorf(chain.ErrInvitationPending, "storage bucket %d already has a pending invitation for worker %d; cancel it before inviting another", b.ID, *b.Operator)
	}
	w, err := x.worker(chain.StorageGroup, m.Worker)
	if err != nil {
		return err
	}
	if w.StorageBucket != nil {
		return chain.Errorf(chain.ErrWorkerBusy, "storage worker %d already operates or is invited to storage bucket %d; a worker operates one storage bucket at a time", w.ID, *w.StorageBucket)
	}
	wid := w.ID
	b.OperatorStatus, b.Operator = chain.OperatorInvited, &wid
	bid := b.ID
	w.StorageBucket = &bid
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	if err := x.putWorker(w); err != nil {
		return err
	}
	x.emit(chain.StorageOperatorInvited{Bucket: b.ID, Worker: w.ID})
	return nil
}

func (x *execCtx) cancelStorageBucketInvitation(m chain.MsgCancelStorageBucketInvitation) error {
	_, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	if b.OperatorStatus != chain.OperatorInvited {
		return chain.Errorf(chain.ErrNoInvitation, "storage bucket %d has no pending invitation", b.ID)
	}
	wid := *b.Operator
	if err := x.releaseStorageWorker(wid); err != nil {
		return err
	}
	b.OperatorStatus, b.Operator = chain.OperatorMissing, nil
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageInvitationCancelled{Bucket: b.ID, Worker: wid})
	return nil
}

func (x *execCtx) releaseStorageWorker(id chain.WorkerID) error {
	w, err := x.worker(chain.StorageGroup, id)
	if err != nil {
		return err
	}
	w.StorageBucket = nil
	return x.putWorker(w)
}

func (x *execCtx) removeStorageBucketOperator(m chain.MsgRemoveStorageBucketOperator) error {
	_, b, err := x.leadStorageBucket(m.Bucket)
	if err != nil {
		return err
	}
	if b.OperatorStatus != chain.OperatorActive {
		return chain.Errorf(chain.ErrNotOperator, "storage bucket %d has no active operator (status %s)", b.ID, b.OperatorStatus)
	}
	wid := *b.Operator
	if err := x.releaseStorageWorker(wid); err != nil {
		return err
	}
	b.OperatorStatus, b.Operator, b.Transactor, b.Metadata = chain.OperatorMissing, nil, "", nil
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageOperatorRemoved{Bucket: b.ID, Worker: wid})
	return nil
}

func (x *execCtx) acceptStorageBucketInvitation(m chain.MsgAcceptStorageBucketInvitation) error {
	b, err := x.storageBucket(m.Bucket)
	if err != nil {
		return err
	}
	if _, err := x.signingWorker(chain.StorageGroup, m.Worker); err != nil {
		return err
	}
	if b.OperatorStatus != chain.OperatorInvited || *b.Operator != m.Worker {
		return chain.Errorf(chain.ErrNoInvitation, "storage worker %d has no pending invitation to storage bucket %d; ask the storage lead to invite it", m.Worker, b.ID)
	}
	tr := m.Transactor
	if tr == "" {
		tr = x.signer
	}
	b.OperatorStatus, b.Transactor = chain.OperatorActive, tr
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageInvitationAccepted{Bucket: b.ID, Worker: m.Worker, Transactor: tr})
	return nil
}

// activeStorageOperator loads a bucket and checks that worker is its active
// operator.
func (x *execCtx) activeStorageOperator(bucket chain.StorageBucketID, worker chain.WorkerID) (chain.StorageBucket, workerRecord, error) {
	b, err := x.storageBucket(bucket)
	if err != nil {
		return b, workerRecord{}, err
	}
	w, err := x.worker(chain.StorageGroup, worker)
	if err != nil {
		return b, w, err
	}
	if b.OperatorStatus != chain.OperatorActive || *b.Operator != worker {
		return b, w, chain.Errorf(chain.ErrNotOperator, "storage worker %d is not the active operator of storage bucket %d", worker, bucket)
	}
	return b, w, nil
}

func (x *execCtx) setStorageOperatorMetadata(m chain.MsgSetStorageOperatorMetadata) error {
	b, w, err := x.activeStorageOperator(m.Bucket, m.Worker)
	if err != nil {
		return err
	}
	if err := x.requireWorkerKey(w); err != nil {
		return err
	}
	md := m.Metadata
	b.Metadata = &md
	if err := x.putStorageBucket(b); err != nil {
		return err
	}
	x.emit(chain.StorageOperatorMetadataSet{Bucket: b.ID, Worker: w.ID, Metadata: md})
	return nil
}

// updateBagStorageBuckets moves a bag between storage buckets, charging
// and refunding the buckets' vouchers with the bag's objects.
func (x *execCtx) updateBagStorageBuckets(m chain.MsgUpdateBagStorageBuckets) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	bag, err := x.bag(m.Bag)
	if err != nil {
		return err
	}
	for _, id := range m.Remove {
		if !bag.HasStorageBucket(id) {
			return chain.Errorf(chain.ErrBagNotInBucket, "bag %s is not in storage bucket %d", bag.ID, id)
		}
	}
	for _, id := range m.Add {
		if bag.HasStorageBucket(id) {
			return chain.Errorf(chain.ErrBagAlreadyInBucket, "bag %s is already in storage bucket %d", bag.ID, id)
		}
	}
	if n := uint64(len(bag.StorageBuckets) + len(m.Add) - len(m.Remove)); len(m.Add) > 0 && n > p.Limits.StorageBucketsPerBag {
		return chain.Errorf(chain.ErrBucketsPerBagLimit, "bag %s would be in %d storage buckets, above the storage buckets-per-bag limit %d; remove some or raise the limit", bag.ID, n, p.Limits.StorageBucketsPerBag)
	}
	for _, id := range m.Remove {
		b, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		if b.Voucher.ObjectsUsed, err = checkedSub(b.Voucher.ObjectsUsed, bag.ObjectsCount, "voucher objects used"); err != nil {
			return err
		}
		if b.Voucher.SizeUsed, err = checkedSub(b.Voucher.SizeUsed, bag.ObjectsSize, "voucher size used"); err != nil {
			return err
		}
		if b.BagsCount, err = checkedSub(b.BagsCount, 1, "bags count"); err != nil {
			return err
		}
		if err := x.putStorageBucket(b); err != nil {
			return err
		}
		x.s.c.del(sBucketBagKey(id, bag.ID))
		bag.StorageBuckets = slices.DeleteFunc(bag.StorageBuckets, func(v chain.StorageBucketID) bool { return v == id })
	}
	for _, id := range m.Add {
		b, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		if !b.AcceptingNewBags {
			return chain.Errorf(chain.ErrNotAcceptingBags, "storage bucket %d is not accepting new bags; set it accepting with update-bucket-status first", id)
		}
		if !b.Voucher.Room(bag.ObjectsCount, bag.ObjectsSize) {
			return chain.Errorf(chain.ErrBucketFull, "storage bucket %d has no voucher room for bag %s (%d objects, %d bytes; bucket uses %d/%d objects, %d/%d bytes); raise its voucher limits",
				id, bag.ID, bag.ObjectsCount, bag.ObjectsSize, b.Voucher.ObjectsUsed, b.Voucher.ObjectsLimit, b.Voucher.SizeUsed, b.Voucher.SizeLimit)
		}
		b.Voucher.ObjectsUsed += bag.ObjectsCount
		b.Voucher.SizeUsed += bag.ObjectsSize
		b.BagsCount++
		if err := x.putStorageBucket(b); err != nil {
			return err
		}
		x.s.c.set(sBucketBagKey(id, bag.ID), nil)
		bag.StorageBuckets = insertSorted(bag.StorageBuckets, id, func(a, b chain.StorageBucketID) bool { return a < b })
	}
	if err := x.putBag(bag); err != nil {
		return err
	}
	x.emit(chain.StorageBagBucketsUpdated{Bag: bag.ID, Added: nonNil(m.Add), Removed: nonNil(m.Remove)})
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (x *execCtx) setStorageBucketsPerBagLimit(m chain.MsgSetStorageBucketsPerBagLimit) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	for _, pol := range p.Policies {
		if pol.StorageBuckets > m.Limit {
			return chain.Errorf(chain.ErrBucketsPerBagLimit, "the %s dynamic bag policy asks for %d storage buckets, above the new limit %d; lower the policy first", pol.Type, pol.StorageBuckets, m.Limit)
		}
	}
	p.Limits.StorageBucketsPerBag = m.Limit
	return x.limitsUpdated()
}

func (x *execCtx) setStorageBucketsVoucherMaxLimits(m chain.MsgSetStorageBucketsVoucherMaxLimits) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.VoucherMaxObjects, p.Limits.VoucherMaxSize = m.Objects, m.Size
	return x.limitsUpdated()
}

func (x *execCtx) setMaxDataObjectSize(m chain.MsgSetMaxDataObjectSize) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.Limits.MaxDataObjectSize = m.Size
	return x.limitsUpdated()
}

func (x *execCtx) setStorageDynamicBagPolicy(m chain.MsgSetStorageDynamicBagPolicy) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	if m.StorageBuckets > p.Limits.StorageBucketsPerBag {
		return chain.Errorf(chain.ErrBucketsPerBagLimit, "a %s bag cannot be placed in %d storage buckets: the storage buckets-per-bag limit is %d; raise the limit first", m.BagType, m.StorageBuckets, p.Limits.StorageBucketsPerBag)
	}
	pol := p.policy(m.BagType)
	pol.StorageBuckets = m.StorageBuckets
	p.setPolicy(pol)
	if err := x.saveParams(); err != nil {
		return err
	}
	x.emit(chain.DynamicBagPolicyUpdated{Policy: pol})
	return nil
}

func (x *execCtx) updateBlacklist(m chain.MsgUpdateBlacklist) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	ev := chain.BlacklistUpdated{Added: []string{}, Removed: []string{}}
	canon := func(cs []string) ([]string, error) {
		out := make([]string, len(cs))
		for i, c := range cs {
			var err error
			if out[i], err = chain.CanonicalContentID(c); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	remove, err := canon(m.Remove)
	if err != nil {
		return err
	}
	add, err := canon(m.Add)
	if err != nil {
		return err
	}
	for _, c := range remove {
		if _, ok, err := x.s.c.get(blacklistKey(c)); err != nil {
			return err
		} else if ok {
			x.s.c.del(blacklistKey(c))
			p.BlacklistSize--
			ev.Removed = append(ev.Removed, c)
		}
	}
	for _, c := range add {
		if _, ok, err := x.s.c.get(blacklistKey(c)); err != nil {
			return err
		} else if !ok {
			x.s.c.set(blacklistKey(c), []byte{1})
			p.BlacklistSize++
			ev.Added = append(ev.Added, c)
		}
	}
	if p.BlacklistSize > p.Limits.MaxBlacklistSize {
		return chain.Errorf(chain.ErrBlacklistFull, "the blacklist would hold %d content IDs, above its limit %d; remove some first", p.BlacklistSize, p.Limits.MaxBlacklistSize)
	}
	if err := x.saveParams(); err != nil {
		return err
	}
	x.emit(ev)
	return nil
}

func (x *execCtx) setUploadingBlocked(m chain.MsgSetUploadingBlocked) error {
	p, err := x.requireLead(chain.StorageGroup)
	if err != nil {
		return err
	}
	p.UploadingBlocked = m.Blocked
	if err := x.saveParams(); err != nil {
		return err
	}
	x.emit(chain.UploadingBlockedUpdated{Blocked: m.Blocked})
	return nil
}
