package state

import (
	"maps"
	"slices"

	"github.com/satchel-net/satchel/chain"
)

// leadDistributionBucket checks that the signer is the distribution lead
// and loads a distribution bucket.
func (x *execCtx) leadDistributionBucket(id chain.DistributionBucketID) (*paramsRecord, chain.DistributionBucket, error) {
	p, err := x.requireLead(chain.DistributionGroup)
	if err != nil {
		return nil, chain.DistributionBucket{}, err
	}
	b, err := x.distributionBucket(id)
	return p, b, err
}

func (x *execCtx) createFamily(chain.MsgCreateDistributionBucketFamily) error {
	if _, err := x.requireLead(chain.DistributionGroup); err != nil {
		return err
	}
	id, err := x.s.nextID(seqFamily)
	if err != nil {
		return err
	}
	f := familyRecord{ID: chain.FamilyID(id)}
	if err := x.putFamily(f); err != nil {
		return err
	}
	x.emit(chain.DistributionFamilyCreated{Family: f.ID})
	return nil
}

func (x *execCtx) deleteFamily(m chain.MsgDeleteDistributionBucketFamily) error {
	p, err := x.requireLead(chain.DistributionGroup)
	if err != nil {
		return err
	}
	f, err := x.family(m.Family)
	if err != nil {
		return err
	}
	if f.BucketsCount > 0 {
		return chain.Errorf(chain.ErrFamilyHasBuckets, "distribution bucket family %d still has %s; delete them first", f.ID, chain.Plural(int(f.BucketsCount), "bucket"))
	}
	for _, pol := range p.Policies {
		if pol.Families[f.ID] > 0 {
			return chain.Errorf(chain.ErrFamilyInPolicy, "distribution bucket family %d is used by the %s dynamic bag policy; remove it from the policy with update-dynamic-bag-policy first", f.ID, pol.Type)
		}
	}
	x.s.c.del(familyKey(f.ID))
	x.emit(chain.DistributionFamilyDeleted{Family: f.ID})
	return nil
}

func (x *execCtx) setFamilyMetadata(m chain.MsgSetDistributionFamilyMetadata) error {
	if _, err := x.requireLead(chain.DistributionGroup); err != nil {
		return err
	}
	f, err := x.family(m.Family)
	if err != nil {
		return err
	}
	md := m.Metadata
	if md.LatencyTestTargets == nil {
		md.LatencyTestTargets = []string{}
	}
	if md.Areas == nil {
		md.Areas = []chain.Area{}
	}
	f.Metadata = &md
	if err := x.putFamily(f); err != nil {
		return err
	}
	x.emit(chain.DistributionFamilyMetadataSet{Family: f.ID, Metadata: md})
	return nil
}

// createDistributionBucket creates the next bucket of a family. Index
// numbers are never reused within a family; a new bucket is distributing.
func (x *execCtx) createDistributionBucket(m chain.MsgCreateDistributionBucket) error {
	if _, err := x.requireLead(chain.DistributionGroup); err != nil {
		return err
	}
	f, err := x.family(m.Family)
	if err != nil {
		return err
	}
	b := chain.DistributionBucket{
		ID:               chain.DistributionBucketID{Family: f.ID, Index: f.NextIndex},
		AcceptingNewBags: m.AcceptingNewBags,
		Distributing:     true,
		Operators:        []chain.DistributionOperator{},
		Invitations:      []chain.WorkerID{},
	}
	f.NextIndex++
	f.BucketsCount++
	if err := x.putFamily(f); err != nil {
		return err
	}
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionBucketCreated{Bucket: b.ID, AcceptingNewBags: b.AcceptingNewBags})
	return nil
}

func (x *execCtx) deleteDistributionBucket(m chain.MsgDeleteDistributionBucket) error {
	_, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	if b.BagsCount > 0 {
		return chain.Errorf(chain.ErrBucketHasBags, "distribution bucket %s still distributes %s; remove them with update-bag first", b.ID, chain.Plural(int(b.BagsCount), "bag"))
	}
	if len(b.Operators) > 0 {
		return chain.Errorf(chain.ErrBucketHasOperator, "distribution bucket %s has %s; the bucket must have no operators: remove them first", b.ID, chain.Plural(len(b.Operators), "operator"))
	}
	if len(b.Invitations) > 0 {
		return chain.Errorf(chain.ErrInvitationPending, "distribution bucket %s has pending invitations for workers %v; cancel them first", b.ID, b.Invitations)
	}
	f, err := x.family(b.ID.Family)
	if err != nil {
		return err
	}
	if f.BucketsCount, err = checkedSub(f.BucketsCount, 1, "family buckets count"); err != nil {
		return err
	}
	if err := x.putFamily(f); err != nil {
		return err
	}
	x.s.c.del(dBucketKey(b.ID))
	x.emit(chain.DistributionBucketDeleted{Bucket: b.ID})
	return nil
}

func (x *execCtx) updateDistributionBucketStatus(m chain.MsgUpdateDistributionBucketStatus) error {
	_, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	b.AcceptingNewBags = m.AcceptingNewBags
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionBucketStatusUpdated{Bucket: b.ID, AcceptingNewBags: b.AcceptingNewBags})
	return nil
}

func (x *execCtx) updateDistributionBucketMode(m chain.MsgUpdateDistributionBucketMode) error {
	_, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	b.Distributing = m.Distributing
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionBucketModeUpdated{Bucket: b.ID, Distributing: b.Distributing})
	return nil
}

func (x *execCtx) setDistributionBucketsPerBagLimit(m chain.MsgSetDistributionBucketsPerBagLimit) error {
	p, err := x.requireLead(chain.DistributionGroup)
	if err != nil {
		return err
	}
	for _, pol := range p.Policies {
		if n := pol.DistributionBuckets(); n > m.Limit {
			return chain.Errorf(chain.ErrBucketsPerBagLimit, "the %s dynamic bag policy asks for %d distribution buckets, above the new limit %d; lower the policy first", pol.Type, n, m.Limit)
		}
	}
	p.Limits.DistributionBucketsPerBag = m.Limit
	return x.limitsUpdated()
}

func (x *execCtx) updateBagDistributionBuckets(m chain.MsgUpdateBagDistributionBuckets) error {
	p, err := x.requireLead(chain.DistributionGroup)
	if err != nil {
		return err
	}
	bag, err := x.bag(m.Bag)
	if err != nil {
		return err
	}
	if _, err := x.family(m.Family); err != nil {
		return err
	}
	id := func(i uint64) chain.DistributionBucketID {
		return chain.DistributionBucketID{Family: m.Family, Index: i}
	}
	for _, i := range m.Remove {
		if !bag.HasDistributionBucket(id(i)) {
			return chain.Errorf(chain.ErrBagNotInBucket, "bag %s is not in distribution bucket %s", bag.ID, id(i))
		}
	}
	for _, i := range m.Add {
		if bag.HasDistributionBucket(id(i)) {
			return chain.Errorf(chain.ErrBagAlreadyInBucket, "bag %s is already in distribution bucket %s", bag.ID, id(i))
		}
	}
	if n := uint64(len(bag.DistributionBuckets) + len(m.Add) - len(m.Remove)); len(m.Add) > 0 && n > p.Limits.DistributionBucketsPerBag {
		return chain.Errorf(chain.ErrBucketsPerBagLimit, "bag %s would be in %d distribution buckets, above the distribution buckets-per-bag limit %d; remove some or raise the limit", bag.ID, n, p.Limits.DistributionBucketsPerBag)
	}
	ev := chain.DistributionBagBucketsUpdated{Bag: bag.ID, Added: []chain.DistributionBucketID{}, Removed: []chain.DistributionBucketID{}}
	for _, i := range m.Remove {
		bid := id(i)
		if err := x.unlinkDistributionBag(bid, bag.ID); err != nil {
			return err
		}
		bag.DistributionBuckets = slices.DeleteFunc(bag.DistributionBuckets, func(v chain.DistributionBucketID) bool { return v == bid })
		ev.Removed = append(ev.Removed, bid)
	}
	for _, i := range m.Add {
		b, err := x.distributionBucket(id(i))
		if err != nil {
			return err
		}
		if !b.AcceptingNewBags {
			return chain.Errorf(chain.ErrNotAcceptingBags, "distribution bucket %s is not accepting new bags; set it accepting with update-bucket-status first", b.ID)
		}
		b.BagsCount++
		if err := x.putDistributionBucket(b); err != nil {
			return err
		}
		x.s.c.set(dBucketBagKey(b.ID, bag.ID), nil)
		bag.DistributionBuckets = insertSorted(bag.DistributionBuckets, b.ID, chain.DistributionBucketID.Less)
		ev.Added = append(ev.Added, b.ID)
	}
	if err := x.putBag(bag); err != nil {
		return err
	}
	x.emit(ev)
	return nil
}

// unlinkDistributionBag drops bag from distribution bucket id's count and
// index; the caller updates the bag record.
func (x *execCtx) unlinkDistributionBag(id chain.DistributionBucketID, bag chain.BagID) error {
	b, err := x.distributionBucket(id)
	if err != nil {
		return err
	}
	if b.BagsCount, err = checkedSub(b.BagsCount, 1, "bags count"); err != nil {
		return err
	}
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.s.c.del(dBucketBagKey(id, bag))
	return nil
}

func (x *execCtx) setDistributionDynamicBagPolicy(m chain.MsgSetDistributionDynamicBagPolicy) error {
	p, err := x.requireLead(chain.DistributionGroup)
	if err != nil {
		return err
	}
	fams := map[chain.FamilyID]uint64{}
	var total uint64
	// Visit families in ID order so the first error is the same on every node.
	for _, f := range slices.Sorted(maps.Keys(m.Families)) {
		n := m.Families[f]
		if n == 0 {
			continue
		}
		if _, err := x.family(f); err != nil {
			return err
		}
		fams[f] = n
		if total, err = checkedAdd(total, n, "policy bucket count"); err != nil {
			return err
		}
	}
	if total > p.Limits.DistributionBucketsPerBag {
		return chain.Errorf(chain.ErrBucketsPerBagLimit, "a %s bag cannot be placed in %d distribution buckets: the distribution buckets-per-bag limit is %d; raise the limit first", m.BagType, total, p.Limits.DistributionBucketsPerBag)
	}
	pol := p.policy(m.BagType)
	pol.Families = fams
	p.setPolicy(pol)
	if err := x.saveParams(); err != nil {
		return err
	}
	x.emit(chain.DynamicBagPolicyUpdated{Policy: pol})
	return nil
}

func (x *execCtx) inviteDistributionBucketOperator(m chain.MsgInviteDistributionBucketOperator) error {
	p, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	w, err := x.worker(chain.DistributionGroup, m.Worker)
	if err != nil {
		return err
	}
	if b.HasOperator(w.ID) {
		return chain.Errorf(chain.ErrAlreadyOperator, "distribution worker %d already operates bucket %s", w.ID, b.ID)
	}
	if slices.Contains(b.Invitations, w.ID) {
		return chain.Errorf(chain.ErrInvitationPending, "distribution worker %d is already invited to bucket %s", w.ID, b.ID)
	}
	if n := uint64(len(b.Operators) + len(b.Invitations)); n >= p.Limits.DistributionOperatorsPerBucket {
		return chain.Errorf(chain.ErrTooManyOperators, "distribution bucket %s already has %d operators and invitations, the most allowed (%d); remove an operator or cancel an invitation first", b.ID, n, p.Limits.DistributionOperatorsPerBucket)
	}
	b.Invitations = insertSorted(b.Invitations, w.ID, func(a, b chain.WorkerID) bool { return a < b })
	w.DistributionBuckets++
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	if err := x.putWorker(w); err != nil {
		return err
	}
	x.emit(chain.DistributionOperatorInvited{Bucket: b.ID, Worker: w.ID})
	return nil
}

func (x *execCtx) releaseDistributionWorker(id chain.WorkerID) error {
	w, err := x.worker(chain.DistributionGroup, id)
	if err != nil {
		return err
	}
	if w.DistributionBuckets, err = checkedSub(w.DistributionBuckets, 1, "worker bucket count"); err != nil {
		return err
	}
	return x.putWorker(w)
}

func (x *execCtx) cancelDistributionBucketInvitation(m chain.MsgCancelDistributionBucketInvitation) error {
	_, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	if !slices.Contains(b.Invitations, m.Worker) {
		return chain.Errorf(chain.ErrNoInvitation, "distribution bucket %s has no pending invitation for worker %d", b.ID, m.Worker)
	}
	b.Invitations = slices.DeleteFunc(b.Invitations, func(w chain.WorkerID) bool { return w == m.Worker })
	if err := x.releaseDistributionWorker(m.Worker); err != nil {
		return err
	}
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionInvitationCancelled{Bucket: b.ID, Worker: m.Worker})
	return nil
}

func (x *execCtx) removeDistributionBucketOperator(m chain.MsgRemoveDistributionBucketOperator) error {
	_, b, err := x.leadDistributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	if !b.HasOperator(m.Worker) {
		return chain.Errorf(chain.ErrNotOperator, "distribution worker %d does not operate bucket %s", m.Worker, b.ID)
	}
	b.Operators = slices.DeleteFunc(b.Operators, func(o chain.DistributionOperator) bool { return o.Worker == m.Worker })
	if err := x.releaseDistributionWorker(m.Worker); err != nil {
		return err
	}
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionOperatorRemoved{Bucket: b.ID, Worker: m.Worker})
	return nil
}

func (x *execCtx) acceptDistributionBucketInvitation(m chain.MsgAcceptDistributionBucketInvitation) error {
	b, err := x.distributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	if _, err := x.signingWorker(chain.DistributionGroup, m.Worker); err != nil {
		return err
	}
	if !slices.Contains(b.Invitations, m.Worker) {
		return chain.Errorf(chain.ErrNoInvitation, "distribution worker %d has no pending invitation to bucket %s; ask the distribution lead to invite it", m.Worker, b.ID)
	}
	b.Invitations = slices.DeleteFunc(b.Invitations, func(v chain.WorkerID) bool { return v == m.Worker })
	b.Operators = insertSorted(b.Operators, chain.DistributionOperator{Worker: m.Worker}, func(a, b chain.DistributionOperator) bool { return a.Worker < b.Worker })
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionInvitationAccepted{Bucket: b.ID, Worker: m.Worker})
	return nil
}

func (x *execCtx) setDistributionOperatorMetadata(m chain.MsgSetDistributionOperatorMetadata) error {
	b, err := x.distributionBucket(m.Bucket)
	if err != nil {
		return err
	}
	if _, err := x.signingWorker(chain.DistributionGroup, m.Worker); err != nil {
		return err
	}
	i := slices.IndexFunc(b.Operators, func(o chain.DistributionOperator) bool { return o.Worker == m.Worker })
	if i < 0 {
		return chain.Errorf(chain.ErrNotOperator, "distribution worker %d does not operate bucket %s; accept an invitation first", m.Worker, b.ID)
	}
	md := m.Metadata
	b.Operators[i].Metadata = &md
	if err := x.putDistributionBucket(b); err != nil {
		return err
	}
	x.emit(chain.DistributionOperatorMetadataSet{Bucket: b.ID, Worker: m.Worker, Metadata: md})
	return nil
}
