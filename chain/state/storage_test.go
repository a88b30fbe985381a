package state

import (
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestPermissions(t *testing.T) {
	h := newHarness(t)
	b := h.storageBucket(true, 10, 100)
	f := h.family()
	d := h.dBucket(f, true)
	bag := chain.CouncilBag
	storageMsgs := []chain.Msg{
		chain.MsgAddWorker{Group: chain.StorageGroup, Account: bob.Account()},
		chain.MsgRemoveWorker{Group: chain.StorageGroup, Worker: 0},
		chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1},
		chain.MsgDeleteStorageBucket{Bucket: b},
		chain.MsgUpdateStorageBucketStatus{Bucket: b},
		chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 1, SizeLimit: 1},
		chain.MsgInviteStorageBucketOperator{Bucket: b, Worker: 0},
		chain.MsgCancelStorageBucketInvitation{Bucket: b},
		chain.MsgRemoveStorageBucketOperator{Bucket: b},
		chain.MsgUpdateBagStorageBuckets{Bag: bag, Add: []chain.StorageBucketID{b}},
		chain.MsgSetStorageBucketsPerBagLimit{Limit: 3},
		chain.MsgSetStorageBucketsVoucherMaxLimits{Objects: 1, Size: 1},
		chain.MsgSetStorageDynamicBagPolicy{BagType: chain.MemberBagType, StorageBuckets: 1},
		chain.MsgUpdateBlacklist{Add: []string{testCID("x")}},
		chain.MsgSetUploadingBlocked{Blocked: true},
		chain.MsgSetMaxDataObjectSize{Size: 1},
	}
	distMsgs := []chain.Msg{
		chain.MsgAddWorker{Group: chain.DistributionGroup, Account: bob.Account()},
		chain.MsgRemoveWorker{Group: chain.DistributionGroup, Worker: 0},
		chain.MsgCreateDistributionBucketFamily{},
		chain.MsgDeleteDistributionBucketFamily{Family: f},
		chain.MsgSetDistributionFamilyMetadata{Family: f},
		chain.MsgCreateDistributionBucket{Family: f},
		chain.MsgDeleteDistributionBucket{Bucket: d},
		chain.MsgUpdateDistributionBucketStatus{Bucket: d},
		chain.MsgUpdateDistributionBucketMode{Bucket: d},
		chain.MsgSetDistributionBucketsPerBagLimit{Limit: 3},
		chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{0}},
		chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType},
		chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: 0},
		chain.MsgCancelDistributionBucketInvitation{Bucket: d, Worker: 0},
		chain.MsgRemoveDistributionBucketOperator{Bucket: d, Worker: 0},
	}
	for _, m := range storageMsgs {
		t.Run("storage/"+m.Type(), func(t *testing.T) {
			h.fail(mallory, m, chain.ErrUnauthorized)
			h.fail(distLead, m, chain.ErrUnauthorized)
		})
	}
	for _, m := range distMsgs {
		t.Run("distribution/"+m.Type(), func(t *testing.T) {
			h.fail(mallory, m, chain.ErrUnauthorized)
			h.fail(storageLead, m, chain.ErrUnauthorized)
		})
	}
	// The role-less key's error names the role it needs.
	r := h.fail(mallory, chain.MsgCreateStorageBucket{}, chain.ErrUnauthorized)
	if want := "only the storage lead"; !strings.Contains(r.Log, want) {
		t.Errorf("log %q does not say %q", r.Log, want)
	}
}

func TestWorkers(t *testing.T) {
	h := newHarness(t)
	w0 := h.addWorker(chain.StorageGroup, bob)
	w1 := h.addWorker(chain.StorageGroup, alice)
	d0 := h.addWorker(chain.DistributionGroup, bob)
	if w0 != 0 || w1 != 1 || d0 != 0 {
		t.Fatalf("worker IDs %d %d %d; want 0 1 0 (per group)", w0, w1, d0)
	}
	b := h.storageBucket(true, 1, 1)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b, Worker: w0})
	h.fail(storageLead, chain.MsgRemoveWorker{Group: chain.StorageGroup, Worker: w0}, chain.ErrWorkerBusy)
	h.do(storageLead, chain.MsgCancelStorageBucketInvitation{Bucket: b})
	r := h.do(storageLead, chain.MsgRemoveWorker{Group: chain.StorageGroup, Worker: w0})
	if ev := event[chain.WorkerRemoved](t, r); ev.Worker != w0 {
		t.Fatal(ev)
	}
	h.fail(storageLead, chain.MsgRemoveWorker{Group: chain.StorageGroup, Worker: w0}, chain.ErrWorkerNotFound)
	if ws := queryAs[[]chain.Worker](t, h.m, chain.QueryWorkers, chain.StorageGroup); len(ws) != 1 || ws[0].ID != w1 {
		t.Fatalf("workers = %+v", ws)
	}
	// A distribution worker operating a bucket is busy too.
	f := h.family()
	d := h.dBucket(f, true)
	h.do(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: d, Worker: d0})
	h.do(bob, chain.MsgAcceptDistributionBucketInvitation{Bucket: d, Worker: d0})
	h.fail(distLead, chain.MsgRemoveWorker{Group: chain.DistributionGroup, Worker: d0}, chain.ErrWorkerBusy)
	h.do(distLead, chain.MsgRemoveDistributionBucketOperator{Bucket: d, Worker: d0})
	h.do(distLead, chain.MsgRemoveWorker{Group: chain.DistributionGroup, Worker: d0})
}

func TestStorageBucketOperators(t *testing.T) {
	h := newHarness(t)
	w0 := h.addWorker(chain.StorageGroup, bob)
	w1 := h.addWorker(chain.StorageGroup, alice)
	b0 := h.storageBucket(true, 10, 100)
	b1 := h.storageBucket(true, 10, 100)

	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: 9, Worker: w0}, chain.ErrStorageBucketNotFound)
	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b0, Worker: 9}, chain.ErrWorkerNotFound)
	ev := event[chain.StorageOperatorInvited](t, h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b0, Worker: w0}))
	if ev.Bucket != b0 || ev.Worker != w0 {
		t.Fatal(ev)
	}
	if got := h.sbucket(b0); got.OperatorStatus != chain.OperatorInvited || *got.Operator != w0 {
		t.Fatalf("bucket = %+v", got)
	}
	// One pending invitation per bucket.
	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b0, Worker: w1}, chain.ErrInvitationPending)
	// A worker is invited to / operates one bucket at a time.
	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b1, Worker: w0}, chain.ErrWorkerBusy)
	// Only the invited worker's key accepts, for the bucket it was invited to.
	h.fail(alice, chain.MsgAcceptStorageBucketInvitation{Worker: w0, Bucket: b0}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgAcceptStorageBucketInvitation{Worker: w1, Bucket: b0}, chain.ErrNoInvitation)
	h.fail(bob, chain.MsgAcceptStorageBucketInvitation{Worker: w0, Bucket: b1}, chain.ErrNoInvitation)
	transactor := testKey("transactor")
	acc := event[chain.StorageInvitationAccepted](t, h.do(bob, chain.MsgAcceptStorageBucketInvitation{Worker: w0, Bucket: b0, Transactor: transactor.Account()}))
	if acc.Transactor != transactor.Account() {
		t.Fatal(acc)
	}
	got := h.sbucket(b0)
	if got.OperatorStatus != chain.OperatorActive || got.Transactor != transactor.Account() {
		t.Fatalf("bucket = %+v", got)
	}
	// One operator per bucket; still busy for other buckets.
	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b0, Worker: w1}, chain.ErrBucketHasOperator)
	h.fail(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b1, Worker: w0}, chain.ErrWorkerBusy)
	h.fail(bob, chain.MsgAcceptStorageBucketInvitation{Worker: w0, Bucket: b0}, chain.ErrNoInvitation)

	// Metadata: only the active operator's role key.
	md := chain.StorageOperatorMetadata{PeerID: "12D3KooW", Multiaddrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Location: &chain.Location{CountryCode: "NO", City: "Oslo"}}
	h.fail(alice, chain.MsgSetStorageOperatorMetadata{Worker: w0, Bucket: b0, Metadata: md}, chain.ErrUnauthorized)
	h.fail(alice, chain.MsgSetStorageOperatorMetadata{Worker: w1, Bucket: b0, Metadata: md}, chain.ErrNotOperator)
	h.do(bob, chain.MsgSetStorageOperatorMetadata{Worker: w0, Bucket: b0, Metadata: md})
	if got := h.sbucket(b0); got.Metadata == nil || got.Metadata.PeerID != "12D3KooW" {
		t.Fatalf("metadata = %+v", got.Metadata)
	}

	// A bucket with an operator or invitation cannot be deleted.
	h.fail(storageLead, chain.MsgDeleteStorageBucket{Bucket: b0}, chain.ErrBucketHasOperator)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b1, Worker: w1})
	h.fail(storageLead, chain.MsgDeleteStorageBucket{Bucket: b1}, chain.ErrInvitationPending)
	h.do(storageLead, chain.MsgCancelStorageBucketInvitation{Bucket: b1})
	h.fail(storageLead, chain.MsgCancelStorageBucketInvitation{Bucket: b1}, chain.ErrNoInvitation)
	h.do(storageLead, chain.MsgDeleteStorageBucket{Bucket: b1})
	h.fail(storageLead, chain.MsgDeleteStorageBucket{Bucket: b1}, chain.ErrStorageBucketNotFound)

	// Removing the operator frees the worker and the bucket.
	h.fail(storageLead, chain.MsgRemoveStorageBucketOperator{Bucket: 9}, chain.ErrStorageBucketNotFound)
	h.do(storageLead, chain.MsgRemoveStorageBucketOperator{Bucket: b0})
	h.fail(storageLead, chain.MsgRemoveStorageBucketOperator{Bucket: b0}, chain.ErrNotOperator)
	if got := h.sbucket(b0); got.OperatorStatus != chain.OperatorMissing || got.Operator != nil || got.Metadata != nil || got.Transactor != "" {
		t.Fatalf("bucket after removal = %+v", got)
	}
	b2 := h.storageBucket(true, 1, 1)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b2, Worker: w0})
	// Create with an invitation in one step.
	w := w1
	r := h.do(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1, InviteWorker: &w})
	if event[chain.StorageOperatorInvited](t, r).Worker != w1 {
		t.Fatal(r.Events)
	}
	// A bucket with bags cannot be deleted.
	h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: chain.CouncilBag, Add: []chain.StorageBucketID{b0}})
	h.fail(storageLead, chain.MsgDeleteStorageBucket{Bucket: b0}, chain.ErrBucketHasBags)
	h.do(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: chain.CouncilBag, Remove: []chain.StorageBucketID{b0}})
	if ev := event[chain.StorageBucketDeleted](t, h.do(storageLead, chain.MsgDeleteStorageBucket{Bucket: b0})); ev.Bucket != b0 {
		t.Fatal(ev)
	}
}

func TestEveryMsgHandled(t *testing.T) {
	h := newHarness(t)
	for _, m := range chain.AllMsgs() {
		r := h.block(h.sign(storageLead, m))[0]
		if r.Code == chain.CodeUnknownMsg || r.Code == chain.CodeInternal {
			t.Errorf("%s: code %d (%s)", m.Type(), r.Code, r.Log)
		}
	}
}
