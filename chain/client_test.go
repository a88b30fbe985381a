package chain_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// memTransport runs a state.Machine in process: a producer goroutine makes
// a block of whatever transactions are waiting, in reverse arrival order
// (so nonces of one key commit out of order), every millisecond.
type memTransport struct {
	m *state.Machine

	mu      sync.Mutex
	height  int64
	blocks  map[int64]chain.BlockEvents
	notify  chan struct{} // closed and replaced at every block
	mempool []pendingTx
	held    bool // no block is made while set
	fifo    bool // blocks take transactions in arrival order, as CometBFT's mempool gives them
	refused int  // transactions CheckTx refused
	waiters int  // callers in WaitForHeight
	empty   bool // empty blocks are made for callers waiting for one, as a chain makes blocks anyway

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

type pendingTx struct {
	tx  []byte
	res chan chain.Committed
}

func newMemTransport(t *testing.T, g chain.Genesis) *memTransport {
	t.Helper()
	m, err := state.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.InitChain(g, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	tr := &memTransport{m: m, blocks: map[int64]chain.BlockEvents{}, notify: make(chan struct{}), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go tr.produce()
	t.Cleanup(func() {
		close(tr.stop)
		<-tr.done
		m.Close()
	})
	return tr
}

func (tr *memTransport) produce() {
	defer close(tr.done)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tr.stop:
			return
		case <-tick.C:
		case <-tr.wake:
		}
		tr.mu.Lock()
		var batch []pendingTx
		if !tr.held {
			batch, tr.mempool = tr.mempool, nil
		}
		empty := tr.empty && !tr.held && tr.waiters > 0
		tr.mu.Unlock()
		if len(batch) == 0 && !empty {
			continue
		}
		if !tr.fifo {
			slices.Reverse(batch)
		}
		txs := make([][]byte, len(batch))
		for i, p := range batch {
			txs[i] = p.tx
		}
		h := tr.height + 1
		results, _, err := tr.m.FinalizeBlock(chain.BlockInfo{Height: h, Time: time.Unix(h, 0), Hash: chain.TxHash([]byte{byte(h), byte(h >> 8)})}, txs)
		if err != nil {
			panic(err)
		}
		if err := tr.m.Commit(); err != nil {
			panic(err)
		}
		be := chain.BlockEvents{Height: h, Time: time.Unix(h, 0), Events: []chain.Event{}}
		for _, r := range results {
			if r.Code == 0 {
				be.Events = append(be.Events, r.Events...)
			}
		}
		tr.mu.Lock()
		tr.height = h
		tr.blocks[h] = be
		close(tr.notify)
		tr.notify = make(chan struct{})
		tr.mu.Unlock()
		for i, p := range batch {
			p.res <- chain.Committed{Height: h, TxHash: chain.TxHash(p.tx), Result: results[i]}
		}
	}
}

func (tr *memTransport) Query(_ context.Context, path string, data []byte) ([]byte, error) {
	return tr.m.Query(path, data)
}

func (tr *memTransport) BroadcastTx(ctx context.Context, tx []byte) (chain.Committed, error) {
	if err := tr.m.CheckTx(tx); err != nil {
		tr.mu.Lock()
		tr.refused++
		tr.mu.Unlock()
		return chain.Committed{}, err
	}
	p := pendingTx{tx: tx, res: make(chan chain.Committed, 1)}
	tr.mu.Lock()
	tr.mempool = append(tr.mempool, p)
	tr.mu.Unlock()
	select {
	case c := <-p.res:
		return c, nil
	case <-ctx.Done():
		return chain.Committed{}, ctx.Err()
	}
}

func (tr *memTransport) BlockEvents(_ context.Context, h int64) (chain.BlockEvents, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	be, ok := tr.blocks[h]
	if !ok {
		return be, errors.New("no such block")
	}
	return be, nil
}

func (tr *memTransport) LatestHeight(context.Context) (int64, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.height, nil
}

func (tr *memTransport) WaitForHeight(ctx context.Context, h int64) error {
	tr.mu.Lock()
	tr.waiters++
	tr.mu.Unlock()
	defer func() {
		tr.mu.Lock()
		tr.waiters--
		tr.mu.Unlock()
	}()
	for {
		tr.mu.Lock()
		height, ch := tr.height, tr.notify
		tr.mu.Unlock()
		if height >= h {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (tr *memTransport) Close() error { return nil }

func testSetup(t *testing.T) (*chain.Client, *memTransport, chain.Key, chain.Key) {
	t.Helper()
	sl, _ := chain.GenerateKey()
	dl, _ := chain.GenerateKey()
	g := chain.DefaultGenesis(sl.Account(), dl.Account())
	g.Limits.MembersPerBlock = 1000 // member creation is these tests' free transaction
	tr := newMemTransport(t, g)
	return chain.NewClient(tr), tr, sl, dl
}

func TestClientSubmitAndRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, lead, _ := testSetup(t)
	user, _ := chain.GenerateKey()

	// An error at mempool admission comes back typed, from no block: a
	// lead's message from another account never reaches one.
	res, err := c.Submit(ctx, user, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 10})
	if !errors.Is(err, chain.ErrUnauthorized) || res.Height != 0 {
		t.Fatalf("Submit by a non-lead = %+v, %v; want ErrUnauthorized before a block", res, err)
	}
	// A runtime error comes back typed, with its block.
	res, err = c.Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 10, InviteWorker: new(chain.WorkerID)})
	if !errors.Is(err, chain.ErrWorkerNotFound) || res.Height == 0 {
		t.Fatalf("Submit inviting a missing worker = %+v, %v; want ErrWorkerNotFound in a block", res, err)
	}
	res, err = c.Submit(ctx, lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 1, SizeLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	created, ok := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
	if !ok || created.Bucket != 0 {
		t.Fatal(res.Result.Events)
	}
	if _, err := c.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, user, chain.MsgCreateChannel{Member: 0}); err != nil {
		t.Fatal(err)
	}
	bag := chain.ChannelBag(0)
	if _, err := c.Submit(ctx, user, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 5, ContentID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(ctx, user, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: "bafybeifkolcwszz3bkmc343ytys3mse7aje2i55xrwsshymbr2dcbmsu6e"}}})
	if !errors.Is(err, chain.ErrBucketFull) {
		t.Fatalf("second object: %v; want ErrBucketFull", err)
	}
	t.Logf("bucket full: %v", err)

	// Typed reads through the Reader interface.
	var r chain.Reader = c
	if b, err := r.Bag(ctx, bag); err != nil || b.ObjectsCount != 1 || b.StorageBuckets[0] != 0 {
		t.Fatal(b, err)
	}
	if sb, err := r.StorageBucket(ctx, 0); err != nil || sb.Bags[0] != bag {
		t.Fatal(sb, err)
	}
	if objs, err := r.Objects(ctx, bag); err != nil || len(objs) != 1 {
		t.Fatal(objs, err)
	}
	if o, err := r.DataObject(ctx, bag, 1); err != nil || o.ContentID != "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" {
		t.Fatal(o, err)
	}
	if _, err := r.DataObject(ctx, bag, 5); !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatal(err)
	}
	if p, err := r.Params(ctx); err != nil || p.StorageLead != lead.Account() {
		t.Fatal(p, err)
	}
	if a, err := r.Account(ctx, user.Account()); err != nil || a.Nonce < 4 {
		t.Fatal(a, err)
	}
	if m, err := r.Member(ctx, 0); err != nil || m.Controller != user.Account() {
		t.Fatal(m, err)
	}
	if ch, err := r.Channel(ctx, 0); err != nil || ch.Bag != bag {
		t.Fatal(ch, err)
	}
	if bs, err := r.Bags(ctx); err != nil || len(bs) != 5 {
		t.Fatal(bs, err)
	}
	if bs, err := r.StorageBuckets(ctx); err != nil || len(bs) != 1 {
		t.Fatal(bs, err)
	}
	if fs, err := r.DistributionFamilies(ctx); err != nil || len(fs) != 0 {
		t.Fatal(fs, err)
	}
	if ws, err := r.Workers(ctx, chain.StorageGroup); err != nil || len(ws) != 0 {
		t.Fatal(ws, err)
	}
	if info, err := r.Info(ctx); err != nil || info.ChainID != chain.DefaultChainID || info.Height == 0 {
		t.Fatal(info, err)
	}
	// ValidateBasic runs before signing.
	if _, err := c.Submit(ctx, user, chain.MsgDeleteDataObjects{Bag: bag}); !errors.Is(err, chain.ErrInvalid) {
		t.Fatal(err)
	}
}

// proposed puts tx in the next block without this node's CheckTx, as a
// transaction another validator admitted and proposed.
func (tr *memTransport) proposed(tx []byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.mempool = append(tr.mempool, pendingTx{tx: tx, res: make(chan chain.Committed, 1)})
}

// mempoolState reports how many transactions wait and how many CheckTx
// refused.
func (tr *memTransport) mempoolState() (waiting, refused int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.mempool), tr.refused
}

// An account with as many transactions waiting as the mempool admits has
// the rest refused at CheckTx; Submit waits for the next block and signs
// them again, so every one commits.
func TestClientWaitsOutFullMempool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, tr, _, _ := testSetup(t)
	user, _ := chain.GenerateKey()
	tr.mu.Lock()
	// In arrival order: CheckTx keeps the nonces it admits within the
	// account's window in that order, which a block must follow.
	tr.held, tr.fifo = true, true
	tr.mu.Unlock()
	const n = state.MaxPendingPerAccount + 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Submit(ctx, user, chain.MsgCreateMember{})
			errs <- err
		}()
	}
	for {
		waiting, refused := tr.mempoolState()
		if waiting == state.MaxPendingPerAccount && refused >= n-waiting {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("mempool: %d waiting, %d refused; want %d and %d", waiting, refused, state.MaxPendingPerAccount, n-state.MaxPendingPerAccount)
		case <-time.After(time.Millisecond):
		}
	}
	tr.mu.Lock()
	tr.held = false
	tr.mu.Unlock()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Member(ctx, n-1); err != nil {
		t.Fatal(err)
	}
}

// A create_member refused at CheckTx because the mempool holds a block's
// member quota already waits for the next block and is sent again, rather
// than fail a newcomer who came in a busy block.
func TestClientWaitsOutMemberQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sl, _ := chain.GenerateKey()
	dl, _ := chain.GenerateKey()
	g := chain.DefaultGenesis(sl.Account(), dl.Account())
	g.Limits.MembersPerBlock = 1
	tr := newMemTransport(t, g)
	c := chain.NewClient(tr)
	tr.mu.Lock()
	// The second submit, refused for the quota, waits for a block after
	// the one it last saw: had it read the height just after the first's
	// block, no other transaction would ever make that block.
	tr.held, tr.empty = true, true
	tr.mu.Unlock()
	first, _ := chain.GenerateKey()
	second, _ := chain.GenerateKey()
	errs := make(chan error, 2)
	go func() {
		_, err := c.Submit(ctx, first, chain.MsgCreateMember{})
		errs <- err
	}()
	waitMempool(ctx, t, tr, 1, 0)
	go func() {
		_, err := c.Submit(ctx, second, chain.MsgCreateMember{})
		errs <- err
	}()
	waitMempool(ctx, t, tr, 1, 1) // the second refused: the quota waits
	tr.mu.Lock()
	tr.held = false
	tr.mu.Unlock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m, err := c.Member(ctx, 1); err != nil || m.Controller != second.Account() {
		t.Fatalf("member 1 = %+v, %v; want the second newcomer's", m, err)
	}
}

// waitMempool waits until the transport holds waiting transactions and
// has refused at least refused.
func waitMempool(ctx context.Context, t *testing.T, tr *memTransport, waiting, refused int) {
	t.Helper()
	for {
		w, r := tr.mempoolState()
		if w == waiting && r >= refused {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("mempool: %d waiting, %d refused; want %d and %d", w, r, waiting, refused)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestClientConcurrentNonces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, _, _ := testSetup(t)
	user, _ := chain.GenerateKey()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Submit(ctx, user, chain.MsgCreateMember{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every submission committed once.
	if _, err := c.Member(ctx, n-1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Member(ctx, n); !errors.Is(err, chain.ErrNotFound) {
		t.Fatalf("member %d: %v", n, err)
	}
}

func TestClientStaleNonceRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, tr, _, _ := testSetup(t)
	user, _ := chain.GenerateKey()
	if _, err := c1.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatal(err)
	}
	// Another client with the same key uses the next nonces behind c1's back.
	c2 := chain.NewClient(tr)
	for i := 0; i < 2; i++ {
		if _, err := c2.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
			t.Fatal(err)
		}
	}
	// c1's cached nonce (2) is used: it reloads and retries once.
	if _, err := c1.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatalf("stale nonce was not retried: %v", err)
	}
	if a, _ := c1.Account(ctx, user.Account()); a.Nonce != 4 {
		t.Fatalf("nonce %d; want 4", a.Nonce)
	}
}

// queryCounter counts the queries that reach the transport, by path.
type queryCounter struct {
	chain.Transport
	mu     sync.Mutex
	counts map[string]int
}

func (q *queryCounter) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	q.mu.Lock()
	q.counts[path]++
	q.mu.Unlock()
	return q.Transport.Query(ctx, path, data)
}

func (q *queryCounter) count(path string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[path]
}

// Prepare reads the chain ID and the account's nonce ahead, so the Submit
// that follows signs at once; a nonce that another client used meanwhile
// is refused at CheckTx and reloaded.
func TestClientPrepare(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, tr, _, _ := testSetup(t)
	qc := &queryCounter{Transport: tr, counts: map[string]int{}}
	c := chain.NewClient(qc)
	user, _ := chain.GenerateKey()
	if err := c.Prepare(ctx, chain.Key{}); err == nil {
		t.Fatal("Prepare with no key succeeded")
	}
	if err := c.Prepare(ctx, user); err != nil {
		t.Fatal(err)
	}
	accounts, infos := qc.count(chain.QueryAccount), qc.count(chain.QueryInfo)
	if accounts != 1 || infos != 1 {
		t.Fatalf("Prepare read the account %d times and the node info %d times; want once each", accounts, infos)
	}
	if _, err := c.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatal(err)
	}
	if n := qc.count(chain.QueryAccount); n != accounts {
		t.Fatalf("Submit after Prepare read the account again (%d reads)", n)
	}
	if err := c.Prepare(ctx, user); err != nil || qc.count(chain.QueryAccount) != accounts {
		t.Fatalf("a second Prepare read the known nonce again (%d reads, err %v)", qc.count(chain.QueryAccount), err)
	}

	// A fresh client prepares, then another uses the nonce it read.
	stale := chain.NewClient(qc)
	if err := stale.Prepare(ctx, user); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Submit(ctx, user, chain.MsgCreateMember{}); err != nil {
		t.Fatalf("a prepared nonce used meanwhile was not reloaded: %v", err)
	}
	if a, _ := c.Account(ctx, user.Account()); a.Nonce != 3 {
		t.Fatalf("nonce %d; want 3", a.Nonce)
	}
}

// stallingAccounts is a transport whose account reads stall until ctx ends
// (a node that takes the query and never answers).
type stallingAccounts struct {
	chain.Transport
	stalled chan struct{}
}

func (s *stallingAccounts) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if path == chain.QueryAccount {
		select {
		case s.stalled <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Transport.Query(ctx, path, data)
}

// A Prepare whose read stalls holds nothing a Submit waits on: the Submit
// reads the nonce itself and ends at its own deadline.
func TestClientPrepareStallsNoSubmit(t *testing.T) {
	_, tr, _, _ := testSetup(t)
	st := &stallingAccounts{Transport: tr, stalled: make(chan struct{}, 1)}
	c := chain.NewClient(st)
	user, _ := chain.GenerateKey()
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = c.Prepare(pctx, user) }()
	<-st.stalled
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Submit(ctx, user, chain.MsgCreateMember{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Submit over a stalled node: %v; want its own deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Submit waited for Prepare's stalled read past its own deadline")
	}
}

func TestClientSubscribe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, lead, _ := testSetup(t)
	for i := 0; i < 3; i++ {
		if _, err := c.Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Resume from height 2: blocks 2 and 3 already committed, then a new one.
	sctx, scancel := context.WithCancel(ctx)
	blocks, errc := c.Subscribe(sctx, 2)
	go c.Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	var got []chain.StorageBucketID
	for want := int64(2); want <= 4; want++ {
		be := <-blocks
		if be.Height != want {
			t.Fatalf("block %d; want %d", be.Height, want)
		}
		ev, ok := chain.FindEvent[chain.StorageBucketCreated](be.Events)
		if !ok {
			t.Fatalf("block %d has no StorageBucketCreated: %v", be.Height, be.Events)
		}
		got = append(got, ev.Bucket)
	}
	if !slices.Equal(got, []chain.StorageBucketID{1, 2, 3}) {
		t.Fatalf("buckets %v", got)
	}
	scancel()
	for range blocks {
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v; want context.Canceled", err)
	}
}

// A new worker's first transaction, refused at CheckTx as naming no
// worker while the block that adds it waits — four throwaway keys
// claiming the next worker IDs took every provisional slot — is sent again
// after that block and commits; a transaction naming a worker no block
// adds is sent again once and then refused.
func TestClientResubmitsNewWorkersFirstTx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, tr, sl, _ := testSetup(t)
	res, err := c.Submit(ctx, sl, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	created, _ := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
	bucket := created.Bucket
	ws, err := c.Workers(ctx, chain.StorageGroup)
	if err != nil {
		t.Fatal(err)
	}
	next := chain.WorkerID(len(ws))
	tr.mu.Lock()
	tr.held, tr.fifo = true, true
	tr.mu.Unlock()

	// The lead's hire went to another validator: this node's CheckTx
	// never saw it, and the next block holds it.
	wk, _ := chain.GenerateKey()
	lead, err := c.Account(ctx, sl.Account())
	if err != nil {
		t.Fatal(err)
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []chain.Msg{
		chain.MsgAddWorker{Group: chain.StorageGroup, Account: wk.Account()},
		chain.MsgInviteStorageBucketOperator{Bucket: bucket, Worker: next},
	} {
		tx, err := chain.SignTxForChain(chainID, sl, lead.Nonce+1+uint64(i), m)
		if err != nil {
			t.Fatal(err)
		}
		tr.proposed(tx)
	}
	errs := make(chan error, 4)
	for i := range chain.WorkerID(4) {
		squat, _ := chain.GenerateKey()
		go func() {
			_, err := c.Submit(ctx, squat, chain.MsgSetStorageOperatorMetadata{Worker: next + i, Bucket: bucket})
			errs <- err
		}()
		waitMempool(ctx, t, tr, 3+int(i), 0)
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := c.Submit(ctx, wk, chain.MsgAcceptStorageBucketInvitation{Worker: next, Bucket: bucket})
		accepted <- err
	}()
	stranger, _ := chain.GenerateKey()
	far := make(chan error, 1)
	go func() {
		_, err := c.Submit(ctx, stranger, chain.MsgAcceptStorageBucketInvitation{Worker: next + 100, Bucket: bucket})
		far <- err
	}()
	// Both refused, both waiting for the next block.
	waitRefusedWaiting(ctx, t, tr, map[string]chan error{
		"the new worker's acceptance returned before the block that adds it": accepted,
		"an acceptance naming no worker returned without waiting a block":    far,
	})
	tr.mu.Lock()
	tr.held = false
	tr.mu.Unlock()

	if err := <-accepted; err != nil {
		t.Fatalf("the new worker's acceptance: %v", err)
	}
	if err := <-far; !errors.Is(err, chain.ErrWorkerNotFound) {
		t.Fatalf("an acceptance naming no worker: %v; want %v", err, chain.ErrWorkerNotFound.Msg)
	}
	for range 4 { // the squatters' transactions reached the block and failed there
		if err := <-errs; err == nil {
			t.Fatal("a squatter set the new worker's metadata")
		}
	}
	b, err := c.StorageBucket(ctx, bucket)
	if err != nil || b.Operator == nil || *b.Operator != next || b.OperatorStatus != chain.OperatorActive {
		t.Fatalf("bucket after the acceptance: %+v, %v; want operated by worker %d", b, err, next)
	}
	if _, refused := tr.mempoolState(); refused != 3 {
		t.Fatalf("CheckTx refused %d; want 3 (each acceptance once, the one naming no worker again)", refused)
	}
}

// A new member's first transaction, refused at CheckTx as naming no
// member because the node's provisional room for newcomers is taken
// while the block that creates the member is still to come, is sent
// again after that block and commits. One naming a member no block
// creates is sent again once and then refused.
func TestClientResubmitsNewMembersFirstTx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sl, _ := chain.GenerateKey()
	dl, _ := chain.GenerateKey()
	g := chain.DefaultGenesis(sl.Account(), dl.Account())
	one := uint64(1)
	// Room for two provisional accounts: one open and one invited
	// registration a block.
	g.Limits.MembersPerBlock, g.Limits.OpenMembersPerBlock = 1, &one
	tr := newMemTransport(t, g)
	c := chain.NewClient(tr)
	// A bucket for the channel's bag.
	if _, err := c.Submit(ctx, sl, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1000}); err != nil {
		t.Fatal(err)
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const next = chain.MemberID(0)
	tr.mu.Lock()
	tr.held, tr.fifo = true, true
	tr.mu.Unlock()

	// The newcomer registered through another validator: this node's
	// CheckTx never saw it, and the next block holds it.
	mk, _ := chain.GenerateKey()
	tx, err := chain.SignTxForChain(chainID, mk, 1, chain.MsgCreateMember{})
	if err != nil {
		t.Fatal(err)
	}
	tr.proposed(tx)
	errs := make(chan error, 2)
	for i := range chain.MemberID(2) {
		squat, _ := chain.GenerateKey()
		go func() {
			_, err := c.Submit(ctx, squat, chain.MsgCreateChannel{Member: next + i})
			errs <- err
		}()
		waitMempool(ctx, t, tr, 2+int(i), 0)
	}
	created := make(chan error, 1)
	go func() {
		_, err := c.Submit(ctx, mk, chain.MsgCreateChannel{Member: next})
		created <- err
	}()
	stranger, _ := chain.GenerateKey()
	far := make(chan error, 1)
	go func() {
		_, err := c.Submit(ctx, stranger, chain.MsgCreateChannel{Member: next + 100})
		far <- err
	}()
	// Both refused, both waiting for the next block.
	waitRefusedWaiting(ctx, t, tr, map[string]chan error{
		"the new member's create_channel returned before the block that creates the member": created,
		"a create_channel naming no member returned without waiting a block":                far,
	})
	tr.mu.Lock()
	tr.held = false
	tr.mu.Unlock()

	if err := <-created; err != nil {
		t.Fatalf("the new member's create_channel: %v", err)
	}
	if err := <-far; !errors.Is(err, chain.ErrMemberNotFound) {
		t.Fatalf("a create_channel naming no member: %v; want %v", err, chain.ErrMemberNotFound.Msg)
	}
	for range 2 { // the squatters' transactions reached the block and failed there
		if err := <-errs; err == nil {
			t.Fatal("a squatter created a channel for a member it does not control")
		}
	}
	if ch, err := c.Channel(ctx, 0); err != nil || ch.Owner != mk.Account() {
		t.Fatalf("channel 0: %+v, %v; want owned by the new member's controller %s", ch, err, mk.Account())
	}
	if _, refused := tr.mempoolState(); refused != 3 {
		t.Fatalf("CheckTx refused %d; want 3 (each create_channel once, the one naming no member again)", refused)
	}
}

// waitRefusedWaiting waits until CheckTx has refused as many transactions
// as submits it watches (submits: what it means if one returns meanwhile)
// and each submit waits for a block.
func waitRefusedWaiting(ctx context.Context, t *testing.T, tr *memTransport, submits map[string]chan error) {
	t.Helper()
	for {
		tr.mu.Lock()
		refused, waiters := tr.refused, tr.waiters
		tr.mu.Unlock()
		if refused == len(submits) && waiters == len(submits) {
			return
		}
		for what, done := range submits {
			select {
			case err := <-done:
				t.Fatalf("%s: %v", what, err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d refused, %d waiting for a block; want %d and %d", refused, waiters, len(submits), len(submits))
		case <-time.After(time.Millisecond):
		}
	}
}
