package state

import (
	"fmt"

	"github.com/satchel-net/satchel/chain"
)

// execCtx executes one transaction's message against its cache.
type execCtx struct {
	s      store
	block  chain.BlockInfo
	signer chain.Account
	params *paramsRecord
	events []chain.Event
}

func (x *execCtx) emit(p chain.EventPayload) { x.events = append(x.events, chain.NewEvent(p)) }

func (x *execCtx) exec(msg chain.Msg) error {
	switch m := msg.(type) {
	case chain.MsgAddWorker:
		return x.addWorker(m)
	case chain.MsgRemoveWorker:
		return x.removeWorker(m)
	case chain.MsgCreateMember:
		return x.createMember(m)
	case chain.MsgCreateChannel:
		return x.createChannel(m)
	case chain.MsgDeleteChannel:
		return x.deleteChannel(m)

	case chain.MsgCreateStorageBucket:
		return x.createStorageBucket(m)
	case chain.MsgDeleteStorageBucket:
		return x.deleteStorageBucket(m)
	case chain.MsgUpdateStorageBucketStatus:
		return x.updateStorageBucketStatus(m)
	case chain.MsgSetStorageBucketVoucherLimits:
		return x.setStorageBucketVoucherLimits(m)
	case chain.MsgInviteStorageBucketOperator:
		return x.inviteStorageBucketOperator(m)
	case chain.MsgCancelStorageBucketInvitation:
		return x.cancelStorageBucketInvitation(m)
	case chain.MsgRemoveStorageBucketOperator:
		return x.removeStorageBucketOperator(m)
	case chain.MsgUpdateBagStorageBuckets:
		return x.updateBagStorageBuckets(m)
	case chain.MsgSetStorageBucketsPerBagLimit:
		return x.setStorageBucketsPerBagLimit(m)
	case chain.MsgSetStorageBucketsVoucherMaxLimits:
		return x.setStorageBucketsVoucherMaxLimits(m)
	case chain.MsgSetStorageDynamicBagPolicy:
		return x.setStorageDynamicBagPolicy(m)
	case chain.MsgUpdateBlacklist:
		return x.updateBlacklist(m)
	case chain.MsgSetUploadingBlocked:
		return x.setUploadingBlocked(m)
	case chain.MsgSetMaxDataObjectSize:
		return x.setMaxDataObjectSize(m)
	case chain.MsgSetPendingObjectExpiry:
		return x.setPendingObjectExpiry(m)
	case chain.MsgSetMembersPerBlock:
		return x.setMembersPerBlock(m)
	case chain.MsgInviteMember:
		return x.inviteMember(m)
	case chain.MsgSetMemberInvites:
		return x.setMemberInvites(m)
	case chain.MsgSetOpenMembersPerBlock:
		return x.setOpenMembersPerBlock(m)
	case chain.MsgSetInitialInvites:
		return x.setInitialInvites(m)
	case chain.MsgAcceptStorageBucketInvitation:
		return x.acceptStorageBucketInvitation(m)
	case chain.MsgSetStorageOperatorMetadata:
		return x.setStorageOperatorMetadata(m)
	case chain.MsgAcceptPendingDataObjects:
		return x.acceptPendingDataObjects(m)

	case chain.MsgCreateDistributionBucketFamily:
		return x.createFamily(m)
	case chain.MsgDeleteDistributionBucketFamily:
		return x.deleteFamily(m)
	case chain.MsgSetDistributionFamilyMetadata:
		return x.setFamilyMetadata(m)
	case chain.MsgCreateDistributionBucket:
		return x.createDistributionBucket(m)
	case chain.MsgDeleteDistributionBucket:
		return x.deleteDistributionBucket(m)
	case chain.MsgUpdateDistributionBucketStatus:
		return x.updateDistributionBucketStatus(m)
	case chain.MsgUpdateDistributionBucketMode:
		return x.updateDistributionBucketMode(m)
	case chain.MsgSetDistributionBucketsPerBagLimit:
		return x.setDistributionBucketsPerBagLimit(m)
	case chain.MsgUpdateBagDistributionBuckets:
		return x.updateBagDistributionBuckets(m)
	case chain.MsgSetDistributionDynamicBagPolicy:
		return x.setDistributionDynamicBagPolicy(m)
	case chain.MsgInviteDistributionBucketOperator:
		return x.inviteDistributionBucketOperator(m)
	case chain.MsgCancelDistributionBucketInvitation:
		return x.cancelDistributionBucketInvitation(m)
	case chain.MsgRemoveDistributionBucketOperator:
		return x.removeDistributionBucketOperator(m)
	case chain.MsgAcceptDistributionBucketInvitation:
		return x.acceptDistributionBucketInvitation(m)
	case chain.MsgSetDistributionOperatorMetadata:
		return x.setDistributionOperatorMetadata(m)

	case chain.MsgRegisterDataObjects:
		return x.registerDataObjects(m)
	case chain.MsgDeleteDataObjects:
		return x.deleteDataObjects(m)

	case chain.MsgSetValidator:
		return x.setValidator(m)
	case chain.MsgUpgradeAppVersion:
		return x.upgradeAppVersion(m)
	case chain.MsgCancelAppVersionUpgrade:
		return x.cancelAppVersionUpgrade(m)
	}
	return chain.Errorf(chain.ErrUnknownMsg, "transaction type %s is not handled by this node; upgrade it", msg.Type())
}

// ---- params and roles ----

func (x *execCtx) loadParams() (*paramsRecord, error) {
	if x.params != nil {
		return x.params, nil
	}
	var p paramsRecord
	ok, err := x.s.getJSON(keyParams, &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, chain.Errorf(chain.ErrInternal, "the data directory has no genesis")
	}
	p.Limits = p.Limits.WithDefaults()
	x.params = &p
	return x.params, nil
}

func (x *execCtx) saveParams() error { return x.s.setJSON(keyParams, x.params) }

func leadName(g chain.Group) string { return string(g) + " lead" }

// requireLead fails unless the signer is the lead of g.
func (x *execCtx) requireLead(g chain.Group) (*paramsRecord, error) {
	p, err := x.loadParams()
	if err != nil {
		return nil, err
	}
	if x.signer != p.lead(g) {
		return nil, chain.Errorf(chain.ErrUnauthorized, "only the %s (account %s) may do this; account %s is not the %s", leadName(g), p.lead(g), x.signer, leadName(g))
	}
	return p, nil
}

func (x *execCtx) limitsUpdated() error {
	if err := x.saveParams(); err != nil {
		return err
	}
	x.emit(chain.LimitsUpdated{Limits: x.params.Limits})
	return nil
}

// ---- typed loads ----

func (x *execCtx) worker(g chain.Group, id chain.WorkerID) (workerRecord, error) {
	var w workerRecord
	ok, err := x.s.getJSON(workerKey(g, id), &w)
	if err != nil {
		return w, err
	}
	if !ok {
		return w, chain.Errorf(chain.ErrWorkerNotFound, "%s worker %d does not exist; the %s adds workers with `satchel workers add`", g, id, leadName(g))
	}
	return w, nil
}

func (x *execCtx) putWorker(w workerRecord) error { return x.s.setJSON(workerKey(w.Group, w.ID), w) }

// requireWorkerKey fails unless the signer is the worker's role account.
func (x *execCtx) requireWorkerKey(w workerRecord) error {
	if x.signer != w.Account {
		return chain.Errorf(chain.ErrUnauthorized, "only %s worker %d's role account %s may do this; account %s is not it", w.Group, w.ID, w.Account, x.signer)
	}
	return nil
}

// signingWorker loads a worker of group g and checks that the signer is
// its role account.
func (x *execCtx) signingWorker(g chain.Group, id chain.WorkerID) (workerRecord, error) {
	w, err := x.worker(g, id)
	if err != nil {
		return w, err
	}
	return w, x.requireWorkerKey(w)
}

func (x *execCtx) bag(id chain.BagID) (chain.Bag, error) {
	var b chain.Bag
	ok, err := x.s.getJSON(bagKey(id), &b)
	if err != nil {
		return b, err
	}
	if !ok {
		return b, chain.Errorf(chain.ErrBagNotFound, "bag %s does not exist", id)
	}
	return b, nil
}

func (x *execCtx) putBag(b chain.Bag) error { return x.s.setJSON(bagKey(b.ID), b) }

func (x *execCtx) storageBucket(id chain.StorageBucketID) (chain.StorageBucket, error) {
	var b chain.StorageBucket
	ok, err := x.s.getJSON(sBucketKey(id), &b)
	if err != nil {
		return b, err
	}
	if !ok {
		return b, chain.Errorf(chain.ErrStorageBucketNotFound, "storage bucket %d does not exist", id)
	}
	return b, nil
}

func (x *execCtx) putStorageBucket(b chain.StorageBucket) error {
	b.Bags = nil
	return x.s.setJSON(sBucketKey(b.ID), b)
}

func (x *execCtx) family(id chain.FamilyID) (familyRecord, error) {
	var f familyRecord
	ok, err := x.s.getJSON(familyKey(id), &f)
	if err != nil {
		return f, err
	}
	if !ok {
		return f, chain.Errorf(chain.ErrFamilyNotFound, "distribution bucket family %d does not exist", id)
	}
	return f, nil
}

func (x *execCtx) putFamily(f familyRecord) error { return x.s.setJSON(familyKey(f.ID), f) }

func (x *execCtx) distributionBucket(id chain.DistributionBucketID) (chain.DistributionBucket, error) {
	var b chain.DistributionBucket
	ok, err := x.s.getJSON(dBucketKey(id), &b)
	if err != nil {
		return b, err
	}
	if !ok {
		return b, chain.Errorf(chain.ErrDistributionBucketNotFound, "distribution bucket %s does not exist", id)
	}
	return b, nil
}

func (x *execCtx) putDistributionBucket(b chain.DistributionBucket) error {
	b.Bags = nil
	return x.s.setJSON(dBucketKey(b.ID), b)
}

func (x *execCtx) member(id chain.MemberID) (chain.Member, error) {
	var m chain.Member
	ok, err := x.s.getJSON(memberKey(id), &m)
	if err != nil {
		return m, err
	}
	if !ok {
		return m, chain.Errorf(chain.ErrMemberNotFound, "member %d does not exist", id)
	}
	return m, nil
}

func checkedAdd(a, b uint64, what string) (uint64, error) {
	if a+b < a {
		return 0, chain.Errorf(chain.ErrInvalid, "%s overflows", what)
	}
	return a + b, nil
}

func checkedSub(a, b uint64, what string) (uint64, error) {
	if b > a {
		return 0, fmt.Errorf("%s would go below zero (%d - %d)", what, a, b)
	}
	return a - b, nil
}
