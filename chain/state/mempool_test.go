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

// An account whose transactions fail in a block has its pending allowance
// halved for each failure and doubled back for each block since: a known
// account cannot fill block after block with transactions that pass
// admission and fail in their block.
func TestCheckTxStrikesFailingAccount(t *testing.T) {
	h := newHarness(t)
	h.storageBucket(true, 100, 1000) // for channel bags
	mem := h.member(mallory)
	bobs := h.member(bob)
	junk := chain.MsgCreateChannel{Member: 999} // admitted from a known account, fails in its block
	var txs [][]byte
	for range MaxPendingPerAccount {
		txs = append(txs, h.admitted(mallory, junk))
	}
	txs = append(txs, h.admitted(bob, junk)) // one honest mistake
	for i, r := range h.block(txs...) {
		if r.Code == chain.CodeOK {
			t.Fatalf("junk tx %d succeeded", i)
		}
	}
	// Sixty-four failures: one transaction at a time.
	spam := h.admitted(mallory, junk)
	h.refused(mallory, junk, chain.ErrTooManyPending)
	// One failure: half the allowance.
	for range MaxPendingPerAccount / 2 {
		h.admitted(bob, chain.MsgCreateChannel{Member: bobs})
	}
	h.refused(bob, chain.MsgCreateChannel{Member: bobs}, chain.ErrTooManyPending)
	// Another account is not held up.
	for range MaxPendingPerAccount {
		h.admitted(distLead, chain.MsgCreateDistributionBucketFamily{})
	}
	// Failing again keeps it at one.
	if r := h.block(spam); r[0].Code == chain.CodeOK {
		t.Fatal("junk succeeded")
	}
	h.admitted(mallory, junk)
	h.refused(mallory, junk, chain.ErrTooManyPending)
	// Each block without a failure doubles it back.
	for want := 2; want <= MaxPendingPerAccount; want *= 2 {
		h.block()
		for range want {
			h.admitted(mallory, chain.MsgCreateChannel{Member: mem})
		}
		h.refused(mallory, chain.MsgCreateChannel{Member: mem}, chain.ErrTooManyPending)
	}
	// Admission is not consensus: a block holding more of a struck
	// account's transactions than its allowance executes them all.
	if r := h.block(spam); r[0].Code == chain.CodeOK {
		t.Fatal("junk succeeded")
	}
	for i, r := range h.block(h.sign(mallory, chain.MsgCreateChannel{Member: mem}), h.sign(mallory, chain.MsgCreateChannel{Member: mem})) {
		if r.Code != chain.CodeOK {
			t.Fatalf("struck account's tx %d in a block: %s", i, r.Log)
		}
	}
}

// A node one block behind the network admits a new member's next
// transactions, provisionally, though the member is not in its state yet:
// never proposes them while so, and judges them as any other once it has
// committed the block it lacked.
func TestCheckTxAdmitsNewMemberOneBlockBehind(t *testing.T) {
	// A block registers one member openly and one by invitation: 2.
	open := uint64(1)
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MembersPerBlock, g.Limits.OpenMembersPerBlock = 1, &open })
	h.storageBucket(true, 10, 1000) // for channel bags
	carol, dave := testKey("carol"), testKey("dave")
	spec := []chain.ObjectSpec{{Size: 1, ContentID: testCID("first")}}
	// carol's create_member and the lead's invitation of dave went to
	// another validator, which committed them as members 0 and 1; this
	// node has seen neither.
	joins := [][]byte{h.sign(carol, chain.MsgCreateMember{Handle: "carol"}), h.sign(storageLead, chain.MsgInviteMember{Controller: dave.Account(), Handle: "dave"})}
	channel := h.admitted(carol, chain.MsgCreateChannel{Member: 0})
	upload := h.admitted(carol, chain.MsgRegisterDataObjects{Bag: chain.MemberBag(0), Objects: spec})
	// Provisional is not known: what no block may create is refused.
	h.refused(carol, chain.MsgRegisterDataObjects{Bag: chain.ChannelBag(0), Objects: spec}, chain.ErrBagNotFound)
	// Only members the next block may create (IDs 0 and 1 of 2 a block).
	h.refused(testKey("erin"), chain.MsgCreateChannel{Member: 2}, chain.ErrMemberNotFound)
	squat := h.admitted(mallory, chain.MsgCreateChannel{Member: 1}) // an attacker's guess
	// At most a block's members' worth of accounts at once.
	h.refused(dave, chain.MsgCreateChannel{Member: 1}, chain.ErrMemberNotFound)
	// And few transactions each.
	for range maxProvisionalPending - 2 {
		h.admitted(carol, chain.MsgCreateChannel{Member: 0})
	}
	h.refused(carol, chain.MsgCreateChannel{Member: 0}, chain.ErrTooManyPending)
	// Never proposed while the members are not in state.
	if got := h.m.ProposalTxs([][]byte{channel, upload, squat}); len(got) != 0 {
		t.Fatalf("proposal holds %d provisional transactions; want none", len(got))
	}
	// The block this node lacked commits; the recheck admits carol's and
	// refuses the guess, member 1 being dave's.
	for i, r := range h.block(joins...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("join %d: %s", i, r.Log)
		}
	}
	for _, tx := range [][]byte{channel, upload} {
		if err := h.m.CheckTx(tx); err != nil {
			t.Fatalf("recheck of carol's transaction: %v", err)
		}
	}
	if err := h.m.CheckTx(squat); !errors.Is(err, chain.ErrUnauthorized) {
		t.Fatalf("recheck of the guess = %v; want %v", err, chain.ErrUnauthorized.Msg)
	}
	if got := h.m.ProposalTxs([][]byte{channel, squat}); len(got) != 1 {
		t.Fatalf("proposal holds %d transactions; want carol's channel only", len(got))
	}
	if r := h.block(channel); r[0].Code != chain.CodeOK {
		t.Fatalf("carol's channel: %s", r[0].Log)
	}
	// A provisional transaction waits one block: a block that registers
	// no member leaves it refused at the recheck, though its member is
	// still one the next block may create.
	guess := h.admitted(testKey("gus"), chain.MsgCreateChannel{Member: 2})
	h.block()
	if err := h.m.CheckTx(guess); !errors.Is(err, chain.ErrMemberNotFound) {
		t.Fatalf("recheck a block later = %v; want %v", err, chain.ErrMemberNotFound.Msg)
	}
}

// A proposal holds what admission admits into one block on committed
// state, in order, whatever the mempool handed over.
func TestProposalTxs(t *testing.T) {
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.MembersPerBlock = 3 })
	h.storageBucket(true, 10, 1000) // for channel bags
	bobFirst := h.sign(bob, chain.MsgCreateMember{})
	ok := [][]byte{
		h.sign(testKey("j1"), chain.MsgCreateMember{}),
		h.sign(storageLead, chain.MsgSetUploadingBlocked{}),
		h.sign(testKey("j2"), chain.MsgCreateMember{}),
		h.sign(bob, chain.MsgCreateChannel{Member: 2}), // bob's, known by bobFirst
	}
	notLead := h.sign(mallory, chain.MsgSetUploadingBlocked{})
	overQuota := h.sign(testKey("j4"), chain.MsgCreateMember{})
	h.nonces[storageLead.Account()]--
	sameNonce := h.sign(storageLead, chain.MsgSetUploadingBlocked{Blocked: true})
	var lead [][]byte
	for range MaxPendingPerAccount {
		lead = append(lead, h.sign(storageLead, chain.MsgSetUploadingBlocked{}))
	}
	in := [][]byte{ok[0], ok[1], notLead, ok[2], sameNonce, []byte("not a transaction"), bobFirst, overQuota, ok[3]}
	in = append(in, lead...)
	want := append([][]byte{ok[0], ok[1], ok[2], bobFirst, ok[3]}, lead[:MaxPendingPerAccount-1]...)
	got := h.m.ProposalTxs(in)
	if len(got) != len(want) {
		t.Fatalf("proposal holds %d transactions; want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("proposal tx %d differs from the one admission admits", i)
		}
	}
	for i, r := range h.block(got...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("proposed tx %d: %s", i, r.Log)
		}
	}
}

// The nonces of one account's waiting transactions span at most
// NonceWindow, so a block holding them in any order executes them all.
func TestCheckTxNonceSpan(t *testing.T) {
	h := newHarness(t)
	mem := h.member(alice) // nonce 1
	low := h.admitted(alice, chain.MsgCreateChannel{Member: mem})
	h.nonces[alice.Account()] += NonceWindow - 1 // nonces left unused (refused elsewhere, say)
	high := h.admitted(alice, chain.MsgCreateChannel{Member: mem})
	h.refused(alice, chain.MsgCreateChannel{Member: mem}, chain.ErrTooManyPending)
	h.storageBucket(true, 10, 1000) // for channel bags; commits nothing of alice's
	for i, r := range h.block(high, low) {
		if r.Code != chain.CodeOK {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
}

// From VersionAdmission on, a proposal is held to admission's
// deterministic rules: one a mempool would not have admitted is refused
// with the rule it breaks, what ProposalTxs proposes passes (strikes only
// lower an allowance), and an older chain — or one before its upgrade —
// holds proposals to nothing more.
func TestCheckProposal(t *testing.T) {
	bad := func(h *harness) map[string][][]byte {
		var many [][]byte
		for range MaxPendingPerAccount + 1 {
			many = append(many, h.sign(storageLead, chain.MsgSetUploadingBlocked{}))
		}
		var members [][]byte
		for i := range 3 {
			members = append(members, h.sign(testKey(fmt.Sprint("m", i)), chain.MsgCreateMember{}))
		}
		return map[string][][]byte{
			"not the lead":       {h.sign(mallory, chain.MsgSetUploadingBlocked{})},
			"over the allowance": many,
			"over the quota":     members,
			"a fresh key naming": {h.sign(testKey("fresh"), chain.MsgCreateChannel{Member: 0})},
			"not a transaction":  {[]byte("garbage")},
		}
	}
	want := map[string]*chain.Error{
		"not the lead": chain.ErrUnauthorized, "over the allowance": chain.ErrTooManyPending,
		"over the quota": chain.ErrMembersPerBlock, "a fresh key naming": chain.ErrMemberNotFound,
		"not a transaction": chain.ErrBadTx,
	}
	limit := func(g *chain.Genesis) { g.Limits.MembersPerBlock = 2 }

	h := newHarness(t, limit)
	for name, txs := range bad(h) {
		if err := h.m.CheckProposal(txs); !errors.Is(err, want[name]) {
			t.Errorf("%s: CheckProposal = %v; want %v", name, err, want[name].Msg)
		}
	}
	// What ProposalTxs keeps passes, a struck account's included.
	mem := h.member(mallory)
	var junk [][]byte
	for range 8 {
		junk = append(junk, h.sign(mallory, chain.MsgCreateChannel{Member: 999}))
	}
	h.block(junk...)
	var in [][]byte
	for range 4 {
		in = append(in, h.sign(mallory, chain.MsgCreateChannel{Member: mem}))
	}
	for _, txs := range bad(h) {
		in = append(in, txs...)
	}
	out := h.m.ProposalTxs(in)
	// One of the struck account's, the lead's allowance, the quota.
	if want := 1 + MaxPendingPerAccount + 2; len(out) != want {
		t.Fatalf("ProposalTxs kept %d of %d; want %d", len(out), len(in), want)
	}
	if err := h.m.CheckProposal(out); err != nil {
		t.Fatalf("CheckProposal(ProposalTxs) = %v", err)
	}

	// An older chain accepts them, until its upgrade.
	old := newHarness(t, limit, atVersion(VersionObjectIndex))
	for name, txs := range bad(old) {
		if name == "not a transaction" {
			continue // ProcessProposal's own check, on every version
		}
		if err := old.m.CheckProposal(txs); err != nil {
			t.Errorf("%s on a version %d chain: %v", name, VersionObjectIndex, err)
		}
	}
	at := old.height + 1 + chain.MinUpgradeDelay
	old.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionAdmission, Height: at})
	for old.height < at {
		old.block()
	}
	if err := old.m.CheckProposal(bad(old)["not the lead"]); !errors.Is(err, chain.ErrUnauthorized) {
		t.Fatalf("after the upgrade: CheckProposal = %v; want %v", err, chain.ErrUnauthorized.Msg)
	}
}
