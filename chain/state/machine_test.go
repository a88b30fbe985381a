package state

import (
	"bytes"
	"errors"
	"maps"
	"path/filepath"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestGenesis(t *testing.T) {
	h := newHarness(t)
	height, hash, err := h.m.Info()
	if err != nil || height != 0 || len(hash) != 32 {
		t.Fatalf("Info = %d, %x, %v; want 0, a 32-byte hash, nil", height, hash, err)
	}
	owners := map[chain.BagID]chain.Account{
		chain.CouncilBag:             storageLead.Account(),
		chain.StorageWorkingGroupBag: storageLead.Account(),
		chain.DistributionGroupBag:   distLead.Account(),
	}
	for id, owner := range owners {
		b := h.bag(id)
		if b.Owner != owner || len(b.StorageBuckets) != 0 {
			t.Errorf("bag %s = %+v; want owner %s, no buckets", id, b, owner)
		}
	}
	p := h.params()
	if p.ChainID != chain.DefaultChainID || p.StorageLead != storageLead.Account() || p.Limits != testGenesis().Limits {
		t.Errorf("params = %+v", p)
	}
	if got := p.Policy(chain.ChannelBagType).StorageBuckets; got != 1 {
		t.Errorf("channel policy storage buckets = %d, want 1", got)
	}
	info := queryAs[chain.NodeInfo](t, h.m, chain.QueryInfo, nil)
	if info.ChainID != chain.DefaultChainID || info.Height != 0 || !bytes.Equal(info.AppHash, hash) {
		t.Errorf("info = %+v", info)
	}

	// InitChain again before any block replaces genesis with the same hash.
	again, err := h.m.InitChain(testGenesis(), genesisTime)
	if err != nil || !bytes.Equal(again, hash) {
		t.Fatalf("second InitChain = %x, %v; want %x", again, err, hash)
	}
	h.do(alice, chain.MsgCreateMember{})
	if _, err := h.m.InitChain(testGenesis(), genesisTime); err == nil {
		t.Fatal("InitChain after a committed block succeeded")
	}

	bad := testGenesis()
	bad.StorageLead = "nope"
	m2, _ := NewMemory()
	defer m2.Close()
	if _, err := m2.InitChain(bad, genesisTime); err == nil {
		t.Fatal("InitChain accepted an invalid genesis")
	}
	if _, _, err := m2.FinalizeBlock(chain.BlockInfo{Height: 1}, nil); err == nil {
		t.Fatal("FinalizeBlock before genesis succeeded")
	}
}

func TestNonces(t *testing.T) {
	h := newHarness(t)
	tx1 := h.sign(alice, chain.MsgCreateMember{})
	if r := h.block(tx1); r[0].Code != 0 {
		t.Fatal(r[0].Log)
	}
	// Replay of the committed transaction.
	if err := h.m.CheckTx(tx1); !errors.Is(err, chain.ErrBadNonce) {
		t.Fatalf("CheckTx(replay) = %v; want ErrBadNonce", err)
	}
	if r := h.block(tx1); r[0].Code != chain.CodeBadNonce {
		t.Fatalf("replayed tx: code %d; want bad nonce", r[0].Code)
	}
	// Replay within one block: the second copy fails.
	tx2 := h.sign(alice, chain.MsgCreateMember{})
	r := h.block(tx2, tx2)
	if r[0].Code != 0 || r[1].Code != chain.CodeBadNonce {
		t.Fatalf("same tx twice in a block: codes %d, %d; want 0, bad nonce", r[0].Code, r[1].Code)
	}
	// Gaps are allowed, and unused nonces up to NonceWindow below the
	// highest are accepted once, in any order; older ones are not.
	sign := func(n uint64) []byte {
		b, err := chain.SignTx(alice, n, chain.MsgCreateMember{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := h.m.CheckTx(sign(100)); err != nil {
		t.Fatalf("CheckTx(nonce 100) = %v", err)
	}
	r = h.block(sign(100), sign(50), sign(36), sign(35), sign(99), sign(50), sign(100))
	want := []uint32{0, 0, 0, chain.CodeBadNonce, 0, chain.CodeBadNonce, chain.CodeBadNonce}
	for i := range want {
		if r[i].Code != want[i] {
			t.Fatalf("nonces 100 50 36 35 99 50 100: tx %d code %d (%s); want %d", i, r[i].Code, r[i].Log, want[i])
		}
	}
	for _, n := range []uint64{36, 50, 99, 100, 20} {
		if err := h.m.CheckTx(sign(n)); !errors.Is(err, chain.ErrBadNonce) {
			t.Fatalf("CheckTx(used or old nonce %d) = %v; want ErrBadNonce", n, err)
		}
	}
	if err := h.m.CheckTx(sign(37)); err != nil {
		t.Fatalf("CheckTx(unused nonce 37 in the window) = %v", err)
	}
	if got := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, alice.Account()).Nonce; got != 100 {
		t.Fatalf("nonce = %d, want 100", got)
	}
	// CheckTx admits a nonce to the mempool once until the next commit: a
	// second, different transaction with the same nonce is refused, so one
	// signed nonce cannot fill the mempool. State is not changed.
	next, _ := chain.SignTx(alice, 101, chain.MsgCreateMember{})
	other, _ := chain.SignTx(alice, 101, chain.MsgCreateMember{Handle: "other"})
	if err := h.m.CheckTx(next); err != nil {
		t.Fatal(err)
	}
	if err := h.m.CheckTx(other); !errors.Is(err, chain.ErrBadNonce) {
		t.Fatalf("CheckTx(second tx with admitted nonce 101) = %v; want ErrBadNonce", err)
	}
	if got := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, alice.Account()).Nonce; got != 100 {
		t.Fatalf("CheckTx changed state: nonce = %d, want 100", got)
	}
	// After a commit the mempool is rechecked from committed state: the
	// nonce, still unused on chain, is admitted again.
	h.block()
	if err := h.m.CheckTx(other); err != nil {
		t.Fatalf("CheckTx after commit = %v", err)
	}
}

func TestCheckTxRejects(t *testing.T) {
	h := newHarness(t)
	good, _ := chain.SignTx(alice, 1, chain.MsgCreateMember{})
	tampered := bytes.Replace(good, []byte(`"nonce":1`), []byte(`"nonce":2`), 1)
	wrongChain, _ := chain.SignTxForChain("other", alice, 1, chain.MsgCreateMember{})
	invalid, _ := chain.SignTx(alice, 1, chain.MsgUpdateBagStorageBuckets{Bag: "static:nope"})
	for _, tc := range []struct {
		name string
		tx   []byte
		want *chain.Error
	}{
		{"garbage", []byte("not json"), chain.ErrBadTx},
		{"tampered", tampered, chain.ErrBadSignature},
		{"wrong chain", wrongChain, chain.ErrWrongChain},
		{"invalid msg", invalid, chain.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.m.CheckTx(tc.tx); !errors.Is(err, tc.want) {
				t.Fatalf("CheckTx = %v; want %v", err, tc.want)
			}
			r := h.block(tc.tx)
			if r[0].Code != tc.want.Code {
				t.Fatalf("deliver code %d (%s); want %d", r[0].Code, r[0].Log, tc.want.Code)
			}
		})
	}
	if err := h.m.CheckTx(good); err != nil {
		t.Fatal(err)
	}
}

func TestFailedTxChangesNothing(t *testing.T) {
	h := newHarness(t)
	_, before, _ := h.m.Info()
	state0 := dumpState(t, h.m)
	// Transactions that fail decoding, signature or nonce checks change
	// nothing: same app hash as an empty block.
	bad, _ := chain.SignTx(mallory, 0, chain.MsgCreateMember{})
	r := h.block([]byte("junk"), bad)
	if r[0].Code != chain.CodeBadTx || r[1].Code != chain.CodeBadNonce {
		t.Fatalf("codes %d %d", r[0].Code, r[1].Code)
	}
	_, after, _ := h.m.Info()
	if !bytes.Equal(before, after) {
		t.Fatal("an undecodable or replayed transaction changed the app hash")
	}
	h.block()
	if _, empty, _ := h.m.Info(); !bytes.Equal(before, empty) {
		t.Fatal("an empty block changed the app hash")
	}

	// A validly signed tx whose message fails (mallory is no lead) changes
	// nothing but using its nonce, so its bytes cannot be replayed later.
	tx := h.sign(mallory, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	r = h.block(tx)
	if r[0].Code != chain.CodeUnauthorized || len(r[0].Events) != 0 {
		t.Fatalf("code %d events %v; want unauthorized, none", r[0].Code, r[0].Events)
	}
	if !maps.Equal(state0, dumpState(t, h.m)) {
		t.Fatal("a failed transaction changed state beyond its nonce")
	}
	if n := queryAs[chain.AccountInfo](t, h.m, chain.QueryAccount, mallory.Account()).Nonce; n != 1 {
		t.Fatalf("mallory's nonce = %d; want 1 (used by the failed tx)", n)
	}
	if err := h.m.CheckTx(tx); !errors.Is(err, chain.ErrBadNonce) {
		t.Fatalf("replaying a failed tx: CheckTx = %v; want ErrBadNonce", err)
	}

	// A partially executed tx is discarded whole: creating a bucket with an
	// invitation for a missing worker fails after the bucket was written.
	h.fail(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1, InviteWorker: new(chain.WorkerID)}, chain.ErrWorkerNotFound)
	if bs := queryAs[[]chain.StorageBucket](t, h.m, chain.QueryStorageBuckets, nil); len(bs) != 0 {
		t.Fatalf("buckets after failed create: %v", bs)
	}
	// Successful txs around a failing one in the same block still apply.
	r = h.block(
		h.sign(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}),
		h.sign(mallory, chain.MsgDeleteStorageBucket{Bucket: 0}),
		h.sign(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}),
	)
	if r[0].Code != 0 || r[1].Code != chain.CodeUnauthorized || r[2].Code != 0 {
		t.Fatalf("codes %d %d %d", r[0].Code, r[1].Code, r[2].Code)
	}
	if id := event[chain.StorageBucketCreated](t, r[2]).Bucket; id != 1 {
		t.Fatalf("second bucket id %d, want 1", id)
	}
}

// script is a fixed sequence of blocks touching most of the state.
func script(h *harness) {
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 2})
	for i := 0; i < 4; i++ {
		h.storageBucket(true, 100, 1<<20)
	}
	f := h.family()
	for i := 0; i < 3; i++ {
		h.dBucket(f, true)
	}
	h.do(distLead, chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{f: 2}})
	m := h.member(alice)
	for i := 0; i < 3; i++ {
		ch := h.channel(alice, m)
		h.do(alice, chain.MsgRegisterDataObjects{Bag: chain.ChannelBag(ch), Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID("bafy1")}, {Size: 20, ContentID: testCID("bafy2")}}})
	}
	h.do(alice, chain.MsgDeleteDataObjects{Bag: chain.ChannelBag(0), Objects: []chain.ObjectID{1}})
}

func TestDeterminism(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	script(a)
	script(b)
	ha, ba, _ := a.m.Info()
	hb, bb, _ := b.m.Info()
	if ha != hb || !bytes.Equal(ba, bb) {
		t.Fatalf("same blocks, different state: %d %x vs %d %x", ha, ba, hb, bb)
	}
	for _, bag := range []chain.BagID{chain.ChannelBag(0), chain.ChannelBag(1), chain.ChannelBag(2)} {
		x, y := a.bag(bag), b.bag(bag)
		if !equalJSON(x, y) {
			t.Fatalf("bag %s placed differently: %+v vs %+v", bag, x, y)
		}
	}
	// Different block hashes give a different placement and app hash.
	c := newHarness(t)
	c.hashFor = func(h int64) []byte { return defaultHash(h + 1000) }
	script(c)
	_, bc, _ := c.m.Info()
	if bytes.Equal(ba, bc) {
		t.Fatal("different block hashes produced the same app hash; placement ignores the block")
	}
}

func equalJSON(a, b any) bool {
	ja, _ := jsonMarshal(a)
	jb, _ := jsonMarshal(b)
	return bytes.Equal(ja, jb)
}

func TestRestartResumes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, m: m, nonces: map[chain.Account]uint64{}, hashFor: defaultHash}
	if _, err := m.InitChain(testGenesis(), genesisTime); err != nil {
		t.Fatal(err)
	}
	h.storageBucket(true, 10, 1000)
	h.member(alice)
	height, hash, _ := m.Info()

	// A block finalized but not committed is lost on restart.
	h.height++
	if _, _, err := m.FinalizeBlock(chain.BlockInfo{Height: h.height, Hash: defaultHash(h.height)}, [][]byte{h.sign(alice, chain.MsgCreateMember{})}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	h2, hash2, _ := m2.Info()
	if h2 != height || !bytes.Equal(hash2, hash) {
		t.Fatalf("after restart Info = %d %x; want %d %x", h2, hash2, height, hash)
	}
	if _, err := queryErr[chain.Member](m2, chain.QueryMember, chain.MemberID(1)); !errors.Is(err, chain.ErrMemberNotFound) {
		t.Fatalf("uncommitted member survived restart: %v", err)
	}
	// Replaying the lost block resumes; CheckTx knows the chain ID.
	h.m, h.height = m2, height
	h.nonces[alice.Account()]--
	h.member(alice)
	if got := queryAs[chain.Member](t, m2, chain.QueryMember, chain.MemberID(1)); got.Controller != alice.Account() {
		t.Fatalf("member 1 = %+v", got)
	}
	if err := m2.CheckTx(h.sign(alice, chain.MsgCreateMember{})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m2.FinalizeBlock(chain.BlockInfo{Height: 1}, nil); err == nil {
		t.Fatal("FinalizeBlock at an old height succeeded")
	}
	if err := m2.Commit(); err == nil {
		t.Fatal("Commit without FinalizeBlock succeeded")
	}
}

func TestQueries(t *testing.T) {
	h := newHarness(t)
	bag, b := h.channelBag(10, 1000)
	f := h.family()
	d := h.dBucket(f, true)
	h.do(distLead, chain.MsgUpdateBagDistributionBuckets{Bag: bag, Family: f, Add: []uint64{d.Index}})
	reg := event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 5, ContentID: testCID("c1")}}}))
	w := h.addWorker(chain.StorageGroup, bob)

	if got := h.sbucket(b); len(got.Bags) != 1 || got.Bags[0] != bag || got.Voucher.ObjectsUsed != 1 || got.Voucher.SizeUsed != 5 {
		t.Errorf("storage bucket = %+v", got)
	}
	if got := h.dbucket(f, 0); len(got.Bags) != 1 || got.Bags[0] != bag || !got.Distributing {
		t.Errorf("distribution bucket = %+v", got)
	}
	fams := queryAs[[]chain.DistributionFamily](t, h.m, chain.QueryDistributionFamilies, nil)
	if len(fams) != 1 || len(fams[0].Buckets) != 1 || fams[0].Buckets[0].Bags[0] != bag {
		t.Errorf("families = %+v", fams)
	}
	if got := queryAs[chain.DistributionFamily](t, h.m, chain.QueryDistributionFamily, f); got.NextIndex != 1 {
		t.Errorf("family = %+v", got)
	}
	if got := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: reg.Objects[0].ID}); got.ContentID != testCID("c1") || got.Accepted {
		t.Errorf("object = %+v", got)
	}
	if got := queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bag); len(got) != 1 {
		t.Errorf("objects = %+v", got)
	}
	if got := queryAs[[]chain.Bag](t, h.m, chain.QueryBags, nil); len(got) != 5 { // 3 static, member, channel
		t.Errorf("bags = %d, want 5", len(got))
	}
	if got := queryAs[chain.Channel](t, h.m, chain.QueryChannel, chain.ChannelID(0)); got.Bag != bag || got.Owner != alice.Account() {
		t.Errorf("channel = %+v", got)
	}
	if got := queryAs[[]chain.Worker](t, h.m, chain.QueryWorkers, chain.StorageGroup); len(got) != 1 || got[0].Account != bob.Account() {
		t.Errorf("workers = %+v", got)
	}
	if got := queryAs[chain.Worker](t, h.m, chain.QueryWorker, chain.WorkerRef{Group: chain.StorageGroup, ID: w}); got.Account != bob.Account() {
		t.Errorf("worker = %+v", got)
	}

	for _, tc := range []struct {
		path string
		arg  any
		want *chain.Error
	}{
		{chain.QueryBag, chain.ChannelBag(9), chain.ErrBagNotFound},
		{chain.QueryStorageBucket, chain.StorageBucketID(9), chain.ErrStorageBucketNotFound},
		{chain.QueryDistributionFamily, chain.FamilyID(9), chain.ErrFamilyNotFound},
		{chain.QueryDistributionBucket, chain.DistributionBucketID{Family: 0, Index: 9}, chain.ErrDistributionBucketNotFound},
		{chain.QueryObject, chain.ObjectRef{Bag: bag, ID: 9}, chain.ErrObjectNotFound},
		{chain.QueryObjects, chain.ChannelBag(9), chain.ErrBagNotFound},
		{chain.QueryMember, chain.MemberID(9), chain.ErrMemberNotFound},
		{chain.QueryChannel, chain.ChannelID(9), chain.ErrChannelNotFound},
		{chain.QueryWorker, chain.WorkerRef{Group: chain.DistributionGroup, ID: 0}, chain.ErrWorkerNotFound},
		{chain.QueryWorkers, chain.Group("x"), chain.ErrInvalid},
		{chain.QueryBag, nil, chain.ErrInvalid},
		{"/nope", nil, chain.ErrUnknownQuery},
	} {
		_, err := queryErr[any](h.m, tc.path, tc.arg)
		if !errors.Is(err, tc.want) {
			t.Errorf("query %s %v = %v; want %v", tc.path, tc.arg, err, tc.want.Msg)
		}
		if tc.want.Code >= 100 && tc.want.Code < 200 && !errors.Is(err, chain.ErrNotFound) {
			t.Errorf("query %s: %v does not match ErrNotFound", tc.path, err)
		}
	}
}

func TestQueriesSeeCommittedStateOnly(t *testing.T) {
	h := newHarness(t)
	h.height++
	tx := h.sign(storageLead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	if _, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: h.height, Hash: defaultHash(h.height)}, [][]byte{tx}); err != nil {
		t.Fatal(err)
	}
	if bs := queryAs[[]chain.StorageBucket](t, h.m, chain.QueryStorageBuckets, nil); len(bs) != 0 {
		t.Fatal("a query saw a finalized but uncommitted block")
	}
	if err := h.m.CheckTx(tx); err != nil {
		t.Fatalf("CheckTx must judge nonces by committed state: %v", err)
	}
	if err := h.m.Commit(); err != nil {
		t.Fatal(err)
	}
	if bs := queryAs[[]chain.StorageBucket](t, h.m, chain.QueryStorageBuckets, nil); len(bs) != 1 {
		t.Fatal("the committed bucket is missing")
	}
	if info := queryAs[chain.NodeInfo](t, h.m, chain.QueryInfo, nil); info.Height != h.height {
		t.Fatalf("info height %d; want %d", info.Height, h.height)
	}
}

// TestConcurrentReads runs CheckTx and Query while blocks execute (go test
// -race checks the locking).
func TestConcurrentReads(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	tx, _ := chain.SignTx(bob, 1, chain.MsgCreateMember{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.m.CheckTx(tx)
			h.m.Query(chain.QueryStorageBuckets, nil)
			h.m.Info()
		}
	}()
	for i := 0; i < 20; i++ {
		h.storageBucket(true, 10, 10)
	}
	close(stop)
	<-done
}
