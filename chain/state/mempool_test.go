package state

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// admitted signs msg with k's next nonce, requires CheckTx to admit it and
// returns the transaction for a block.
func (h *harness) admitted(k chain.Key, msg chain.Msg) []byte {
	h.t.Helper()
	tx := h.sign(k, msg)
	if err := h.m.CheckTx(tx); err != nil {
		h.t.Fatalf("CheckTx(%s from %s) = %v; want admitted", msg.Type(), k.Account(), err)
	}
	return tx
}

// refused requires CheckTx to refuse msg signed by k with want. The nonce
// stays unused.
func (h *harness) refused(k chain.Key, msg chain.Msg, want *chain.Error) {
	h.t.Helper()
	if err := msg.ValidateBasic(); err != nil {
		h.t.Fatalf("test message %s is invalid: %v", msg.Type(), err)
	}
	tx := h.sign(k, msg)
	h.nonces[k.Account()]--
	if err := h.m.CheckTx(tx); !errors.Is(err, want) {
		h.t.Fatalf("CheckTx(%s from %s) = %v; want %v", msg.Type(), k.Account(), err, want.Msg)
	}
}

// Every message type but create_member needs a role, a member or an owned
// bag: from a new key with nothing on chain, CheckTx refuses it — as not
// allowed, or, naming what does not exist, as not found.
func TestStandingCoversEveryMessage(t *testing.T) {
	h := newHarness(t)
	x := &execCtx{s: store{newCache(h.m.reader())}, signer: testKey("nobody").Account()}
	for _, msg := range chain.AllMsgs() {
		err := standing(x, false, false, msg)
		if _, member := msg.(chain.MsgCreateMember); member {
			if err != nil {
				t.Errorf("create_member from a new key: %v; want admitted", err)
			}
			continue
		}
		if !errors.Is(err, chain.ErrUnauthorized) && !errors.Is(err, chain.ErrNotFound) {
			t.Errorf("%s from a new key: %v; want ErrUnauthorized or a not-found error", msg.Type(), err)
		}
	}
}

func TestCheckTxRefusesWithoutStanding(t *testing.T) {
	h := newHarness(t)
	bucket, worker := h.operatedBucket(bob, 10, 1000)
	mem := h.member(alice)
	ch := h.channel(alice, mem)
	h.member(mallory) // a member, known on chain, with no other role
	bag := chain.MemberBag(mem)
	spec := []chain.ObjectSpec{{Size: 1, ContentID: testCID("spam")}}
	fresh := testKey("fresh")
	for _, tc := range []struct {
		msg chain.Msg
		// fresh: CheckTx's answer to a new key; known: to mallory.
		fresh, known *chain.Error
	}{
		{chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgAddWorker{Group: chain.StorageGroup, Account: fresh.Account()}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgSetMembersPerBlock{Limit: 1000}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgCreateDistributionBucketFamily{}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgCreateChannel{Member: mem}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgDeleteChannel{Channel: ch}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgRegisterDataObjects{Bag: bag, Objects: spec}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{1}}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgAcceptStorageBucketInvitation{Worker: worker, Bucket: bucket}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		{chain.MsgAcceptPendingDataObjects{Worker: worker, Bucket: bucket, Bag: bag, Objects: []chain.ObjectID{1}}, chain.ErrUnauthorized, chain.ErrUnauthorized},
		// Naming what does not exist: a known account is left to its
		// block (a waiting transaction might create it), a new key is
		// refused with what the block would answer.
		{chain.MsgCreateChannel{Member: 999}, chain.ErrMemberNotFound, nil},
		{chain.MsgRegisterDataObjects{Bag: chain.ChannelBag(999), Objects: spec}, chain.ErrBagNotFound, nil},
		{chain.MsgAcceptStorageBucketInvitation{Worker: 999, Bucket: bucket}, chain.ErrWorkerNotFound, nil},
		{chain.MsgAcceptDistributionBucketInvitation{Worker: 999}, chain.ErrWorkerNotFound, nil},
	} {
		t.Run(tc.msg.Type(), func(t *testing.T) {
			before := dumpState(t, h.m)
			h.refused(fresh, tc.msg, tc.fresh)
			if tc.known != nil {
				h.refused(mallory, tc.msg, tc.known)
			} else {
				h.admitted(mallory, tc.msg)
			}
			if after := dumpState(t, h.m); !maps.Equal(before, after) {
				t.Fatal("CheckTx changed state")
			}
		})
	}
	// Refused, the new key wrote nothing: no nonce, and none waiting.
	if n := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, fresh.Account()).Nonce; n != 0 {
		t.Fatalf("new key's nonce = %d after refusals; want 0", n)
	}
	if _, waiting := h.m.pool.accounts[fresh.Account()]; waiting {
		t.Fatal("a refused transaction left its signer in the mempool")
	}
	// What is open to it still is: becoming a member.
	if r := h.block(h.admitted(fresh, chain.MsgCreateMember{Handle: "fresh"})); r[0].Code != chain.CodeOK {
		t.Fatalf("create_member after refusals: %s", r[0].Log)
	}
}

// Dependent transactions of one account (and of the accounts a waiting
// transaction gives a role) are admitted together and succeed in one
// block, though each but the first fails against committed state.
func TestCheckTxAdmitsDependentSequence(t *testing.T) {
	h := newHarness(t)
	carol := testKey("carol")
	var txs [][]byte
	add := func(k chain.Key, msg chain.Msg) { txs = append(txs, h.admitted(k, msg)) }
	// The storage lead creates a bucket, adds a worker and invites it.
	add(storageLead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1000})
	add(storageLead, chain.MsgAddWorker{Group: chain.StorageGroup, Account: bob.Account()})
	add(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: 0, Worker: 0})
	// The new worker accepts, naming a new transactor.
	add(bob, chain.MsgAcceptStorageBucketInvitation{Worker: 0, Bucket: 0, Transactor: carol.Account()})
	// A new member creates a channel; the lead stores the member's bag
	// (the Member policy places it in no bucket), the member uploads.
	add(alice, chain.MsgCreateMember{Handle: "alice"})
	add(alice, chain.MsgCreateChannel{Member: 0})
	add(storageLead, chain.MsgUpdateBagStorageBuckets{Bag: chain.MemberBag(0), Add: []chain.StorageBucketID{0}})
	add(alice, chain.MsgRegisterDataObjects{Bag: chain.MemberBag(0), Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID("video")}}})
	// The transactor accepts the object.
	add(carol, chain.MsgAcceptPendingDataObjects{Worker: 0, Bucket: 0, Bag: chain.MemberBag(0), Objects: []chain.ObjectID{1}})
	for i, r := range h.block(txs...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("tx %d: code %d: %s", i, r.Code, r.Log)
		}
	}
	if o := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: chain.MemberBag(0), ID: 1}); !o.Accepted {
		t.Fatalf("object after the block: %+v; want accepted", o)
	}
}

// CheckTx admits at most a block's member quota of create_member at once.
func TestCheckTxMemberQuota(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MembersPerBlock = 3 })
	keys := make([]chain.Key, 5)
	var txs [][]byte
	for i := range keys {
		keys[i] = testKey(fmt.Sprintf("joiner %d", i))
		if i < 3 {
			txs = append(txs, h.admitted(keys[i], chain.MsgCreateMember{}))
		}
	}
	h.refused(keys[3], chain.MsgCreateMember{}, chain.ErrMembersPerBlock)
	// A block without them: recheck admits the three again, not a fourth.
	h.block()
	for _, tx := range txs {
		if err := h.m.CheckTx(tx); err != nil {
			t.Fatalf("recheck: %v", err)
		}
	}
	h.refused(keys[4], chain.MsgCreateMember{}, chain.ErrMembersPerBlock)
	for i, r := range h.block(txs...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("member %d: %s", i, r.Log)
		}
	}
	// The block took them: room again.
	for i, r := range h.block(h.admitted(keys[3], chain.MsgCreateMember{}), h.admitted(keys[4], chain.MsgCreateMember{})) {
		if r.Code != chain.CodeOK {
			t.Fatalf("member %d in the next block: %s", i+3, r.Log)
		}
	}
	// A quota the lead changes applies from the next block's admissions.
	h.do(storageLead, chain.MsgSetMembersPerBlock{Limit: 1})
	h.admitted(testKey("joiner 5"), chain.MsgCreateMember{})
	h.refused(testKey("joiner 6"), chain.MsgCreateMember{}, chain.ErrMembersPerBlock)
}

// One account has at most MaxPendingPerAccount transactions waiting; a
// commit makes room.
func TestCheckTxPendingCap(t *testing.T) {
	h := newHarness(t)
	var txs [][]byte
	for range MaxPendingPerAccount {
		txs = append(txs, h.admitted(storageLead, chain.MsgSetUploadingBlocked{}))
	}
	h.refused(storageLead, chain.MsgSetUploadingBlocked{}, chain.ErrTooManyPending)
	// Another account is not held up.
	h.admitted(distLead, chain.MsgCreateDistributionBucketFamily{})
	for i, r := range h.block(txs...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	h.admitted(storageLead, chain.MsgSetUploadingBlocked{})
}
