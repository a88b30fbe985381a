package state

import (
	"errors"
	"fmt"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// A node one block behind the network admits a new worker's acceptance of
// its bucket invitation, and its operator metadata, provisionally, though
// the block that adds and invites the worker is not in its state yet:
// only for workers the next block may add, for few accounts and few
// transactions each; never proposes them while so, and judges them as any
// other once it has committed the block it lacked.
func TestCheckTxAdmitsNewWorkerOneBlockBehind(t *testing.T) {
	h := newHarness(t)
	bucket := h.storageBucket(true, 10, 1000)
	wk := testKey("worker")
	// The lead's add_worker (worker 0) and invitation went to another
	// validator, which committed them; this node has seen neither.
	hire := [][]byte{
		h.sign(storageLead, chain.MsgAddWorker{Group: chain.StorageGroup, Account: wk.Account()}),
		h.sign(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: bucket, Worker: 0}),
	}
	accept := h.admitted(wk, chain.MsgAcceptStorageBucketInvitation{Worker: 0, Bucket: bucket})
	meta := h.admitted(wk, chain.MsgSetStorageOperatorMetadata{Worker: 0, Bucket: bucket, Metadata: chain.StorageOperatorMetadata{PeerID: "12D3KooW"}})
	// Only workers the next block may add: IDs 0 to maxAwaitedWorkers-1.
	h.refused(testKey("far"), chain.MsgAcceptStorageBucketInvitation{Worker: maxAwaitedWorkers, Bucket: bucket}, chain.ErrWorkerNotFound)
	var guesses [][]byte
	tr := testKey("transactor")
	for i := range maxAwaitedWorkers - 1 {
		k := testKey(fmt.Sprint("guess", i))
		guesses = append(guesses, h.admitted(k, chain.MsgAcceptStorageBucketInvitation{Worker: chain.WorkerID(i + 1), Bucket: bucket, Transactor: tr.Account()}))
	}
	// A provisional acceptance gives its transactor no role.
	h.refused(tr, chain.MsgAcceptPendingDataObjects{Worker: 1, Bucket: bucket, Bag: chain.CouncilBag, Objects: []chain.ObjectID{1}}, chain.ErrWorkerNotFound)
	// At most maxAwaitedWorkers accounts at once.
	h.refused(testKey("one too many"), chain.MsgAcceptStorageBucketInvitation{Worker: 1, Bucket: bucket}, chain.ErrWorkerNotFound)
	// And few transactions each.
	for range maxProvisionalPending - 2 {
		h.admitted(wk, chain.MsgSetStorageOperatorMetadata{Worker: 0, Bucket: bucket})
	}
	h.refused(wk, chain.MsgSetStorageOperatorMetadata{Worker: 0, Bucket: bucket}, chain.ErrTooManyPending)
	// Never proposed while the worker is not in state.
	if got := h.m.ProposalTxs(append([][]byte{accept, meta}, guesses...)); len(got) != 0 {
		t.Fatalf("proposal holds %d provisional transactions; want none", len(got))
	}
	if err := h.m.CheckProposal([][]byte{accept}); !errors.Is(err, chain.ErrWorkerNotFound) {
		t.Fatalf("CheckProposal(provisional accept) = %v; want %v", err, chain.ErrWorkerNotFound.Msg)
	}

	// The block this node lacked commits; the recheck admits the worker's
	// transactions and refuses a guess, worker 1 being no one's.
	for i, r := range h.block(hire...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("hire %d: %s", i, r.Log)
		}
	}
	for _, tx := range [][]byte{accept, meta} {
		if err := h.m.CheckTx(tx); err != nil {
			t.Fatalf("recheck of the worker's transaction: %v", err)
		}
	}
	if err := h.m.CheckTx(guesses[0]); !errors.Is(err, chain.ErrWorkerNotFound) {
		t.Fatalf("recheck of a guess = %v; want %v", err, chain.ErrWorkerNotFound.Msg)
	}
	for i, r := range h.block(h.m.ProposalTxs([][]byte{accept, meta, guesses[0]})...) {
		if r.Code != chain.CodeOK {
			t.Fatalf("worker's tx %d in its block: %s", i, r.Log)
		}
	}
	if b := queryAs[chain.StorageBucket](t, h.m, chain.QueryStorageBucket, bucket); b.OperatorStatus != chain.OperatorActive || b.Operator == nil || *b.Operator != 0 || b.Metadata == nil {
		t.Fatalf("bucket after the acceptance: %+v", b)
	}
}

// An account admitted provisionally as one kind of newcomer takes a slot
// of the other kind too when it names one: an account waiting as a new
// member counts toward the maxAwaitedWorkers new-worker accounts once it
// sends a worker's message, and is refused one when they are taken; the
// same the other way round. So neither bound lets more accounts through
// than it says.
func TestProvisionalAccountCountsForEachKind(t *testing.T) {
	// A block registers one member openly and one by invitation: 2.
	open := uint64(1)
	limits := func(g *chain.Genesis) { g.Limits.MembersPerBlock, g.Limits.OpenMembersPerBlock = 1, &open }
	h := newHarness(t, limits)
	bucket := h.storageBucket(true, 10, 1000)
	carol, erin := testKey("carol"), testKey("erin")
	h.admitted(carol, chain.MsgCreateChannel{Member: 0})
	h.admitted(erin, chain.MsgCreateChannel{Member: 1}) // the member slots are taken
	for i := range maxAwaitedWorkers - 1 {
		h.admitted(testKey(fmt.Sprint("guess", i)), chain.MsgAcceptStorageBucketInvitation{Worker: chain.WorkerID(i + 1), Bucket: bucket})
	}
	h.admitted(carol, chain.MsgAcceptStorageBucketInvitation{Worker: 0, Bucket: bucket}) // the last worker slot
	h.refused(testKey("one too many"), chain.MsgAcceptStorageBucketInvitation{Worker: 1, Bucket: bucket}, chain.ErrWorkerNotFound)
	h.refused(erin, chain.MsgAcceptStorageBucketInvitation{Worker: 0, Bucket: bucket}, chain.ErrWorkerNotFound)
	h.refused(testKey("guess0"), chain.MsgCreateChannel{Member: 1}, chain.ErrMemberNotFound)
	// An account holding a slot of a kind names more of it.
	h.admitted(carol, chain.MsgCreateChannel{Member: 1})
	if p := h.m.pool; p.provisional != 2 || p.provisionalWorkers != maxAwaitedWorkers {
		t.Fatalf("provisional accounts: %d members, %d workers; want 2, %d", p.provisional, p.provisionalWorkers, maxAwaitedWorkers)
	}

	// A new worker's account naming a member takes a member slot.
	h = newHarness(t, limits)
	bucket = h.storageBucket(true, 10, 1000)
	wk := testKey("worker")
	h.admitted(wk, chain.MsgAcceptStorageBucketInvitation{Worker: 0, Bucket: bucket})
	h.admitted(wk, chain.MsgCreateChannel{Member: 0})
	h.admitted(carol, chain.MsgCreateChannel{Member: 1})
	h.refused(erin, chain.MsgCreateChannel{Member: 1}, chain.ErrMemberNotFound)
}
