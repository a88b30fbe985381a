package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// freeAddr returns a free 127.0.0.1 port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// testLogger logs to stderr when SATCHEL_TEST_LOG is set (e.g. "debug"),
// and discards otherwise.
func testLogger() *slog.Logger {
	var level slog.Level
	switch os.Getenv("SATCHEL_TEST_LOG") {
	case "":
		return discardLogger()
	case "trace":
		level = levelTrace
	case "debug":
		level = slog.LevelDebug
	default:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startNode makes and starts a node on free loopback ports; the test's
// cleanup stops it.
func startNode(t testing.TB, home string, opts ...Option) *Node {
	t.Helper()
	base := []Option{WithRPCAddr(freeAddr(t)), WithP2PAddr(freeAddr(t)), WithLogger(testLogger())}
	n, err := New(home, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	return n
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or ctx ends.
func eventually(ctx context.Context, t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v (last error: %v)", what, ctx.Err(), lastErr)
		}
	}
}

// recorder wraps a Machine and records the heights it reports and runs.
type recorder struct {
	chain.Machine
	mu        sync.Mutex
	infos     []int64
	finalized []int64
}

func (r *recorder) Info() (int64, []byte, error) {
	h, hash, err := r.Machine.Info()
	r.mu.Lock()
	r.infos = append(r.infos, h)
	r.mu.Unlock()
	return h, hash, err
}

func (r *recorder) FinalizeBlock(b chain.BlockInfo, txs [][]byte) ([]chain.TxResult, []byte, error) {
	r.mu.Lock()
	r.finalized = append(r.finalized, b.Height)
	r.mu.Unlock()
	return r.Machine.FinalizeBlock(b, txs)
}

func (r *recorder) heights() (infos, finalized []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.infos...), append([]int64(nil), r.finalized...)
}

// memberCount counts the members on a node (IDs are dense from 0).
func memberCount(ctx context.Context, t *testing.T, tr chain.Transport) int {
	t.Helper()
	c := chain.NewClient(tr)
	for n := 0; ; n++ {
		_, err := c.Member(ctx, chain.MemberID(n))
		if errors.Is(err, chain.ErrNotFound) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// sameState waits until both nodes report the same committed height (at
// least min) and returns it with the app hashes they report there.
func sameState(ctx context.Context, t *testing.T, a, b *Node, min int64) (int64, string, string) {
	t.Helper()
	var sa, sb Status
	eventually(ctx, t, "nodes at the same height", func() (bool, error) {
		var err error
		if sa, err = a.Status(ctx); err != nil {
			return false, err
		}
		if sb, err = b.Status(ctx); err != nil {
			return false, err
		}
		return sa.Height >= min && sa.Height == sb.Height, fmt.Errorf("heights %d and %d", sa.Height, sb.Height)
	})
	return sa.Height, sa.AppHash, sb.AppHash
}

func TestValidatorAndFullNode(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	// The validator makes a block every 100 ms, transactions or not, so the
	// full node has to keep pace.
	val := startNode(t, filepath.Join(dir, "validator"), WithGenesis(testGenesis(t)), WithEmptyBlockInterval(0))
	full := startNode(t, filepath.Join(dir, "full"),
		WithGenesisDoc(val.GenesisFile()), WithPersistentPeers(val.P2PAddress()))
	if !val.IsValidator() || full.IsValidator() {
		t.Fatalf("IsValidator: validator %v, full node %v", val.IsValidator(), full.IsValidator())
	}
	if full.ChainID() != val.ChainID() {
		t.Fatalf("chain IDs %q and %q", full.ChainID(), val.ChainID())
	}

	// Transactions from several accounts through the validator, and one
	// through the full node (its mempool gossips it to the validator).
	vc := chain.NewClient(val.Transport())
	var last chain.Committed
	for i := range 3 {
		c, err := vc.Submit(ctx, mustKey(t), chain.MsgCreateMember{Handle: fmt.Sprint("v", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = c
	}
	eventually(ctx, t, "full node caught up", func() (bool, error) {
		st, err := full.Status(ctx)
		return err == nil && st.Height >= last.Height && !st.CatchingUp, err
	})
	fc := chain.NewClient(full.Transport())
	viaFull, err := fc.Submit(ctx, mustKey(t), chain.MsgCreateMember{Handle: "f"})
	if err != nil {
		t.Fatalf("submit through the full node: %v", err)
	}

	h, ha, hb := sameState(ctx, t, val, full, viaFull.Height)
	if ha != hb || ha == "" {
		t.Fatalf("at height %d: validator app hash %s, full node %s", h, ha, hb)
	}
	t.Logf("validator and full node at height %d, app hash %s", h, ha)

	// The full node answers queries from its own replicated state.
	for _, n := range []*Node{val, full} {
		if got := memberCount(ctx, t, n.Transport()); got != 4 {
			t.Fatalf("members on %s = %d, want 4", n.NodeID(), got)
		}
	}
	// And both serve the same block events.
	ev, err := full.Transport().BlockEvents(ctx, viaFull.Height)
	if err != nil || len(ev.Events) == 0 {
		t.Fatalf("full node block events at %d: %+v, %v", viaFull.Height, ev, err)
	}

	// The full node follows the validator: whatever height the validator has
	// reached, the full node reaches too. (Its pace is a benchmark's concern,
	// not a test's: these machines are shared.)
	hv, err := val.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Transport().WaitForHeight(ctx, hv); err != nil {
		t.Fatalf("full node did not reach the validator's height %d: %v", hv, err)
	}
}

func TestRestartResumes(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	home := t.TempDir()
	g := testGenesis(t)
	rpc, p2p := freeAddr(t), freeAddr(t)
	opts := []Option{WithRPCAddr(rpc), WithP2PAddr(p2p), WithLogger(testLogger())}

	n1, err := New(home, append(opts, WithGenesis(g))...) // the default machine, on disk
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr1 := n1.Transport()
	c1 := chain.NewClient(tr1)
	k := mustKey(t)
	for i := range 3 {
		if _, err := c1.Submit(ctx, k, chain.MsgCreateMember{Handle: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	m, err := state.New(MachineDir(home), state.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stoppedAt, stoppedHash, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	if stoppedAt == 0 {
		t.Fatal("no block committed before the stop")
	}
	if _, err := n1.Transport().LatestHeight(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("transport of a stopped node: %v, want ErrStopped", err)
	}
	if _, err := tr1.Query(ctx, chain.QueryInfo, nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("query through the transport of a stopped node: %v, want ErrStopped", err)
	}

	rec := &recorder{Machine: m}
	n2, err := New(home, append(opts, WithMachine(rec))...) // no genesis option: the home has it
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Stop() })

	infos, finalized := rec.heights()
	if len(infos) == 0 || infos[0] != stoppedAt {
		t.Fatalf("first Info after restart reported %v, want height %d", infos, stoppedAt)
	}
	for _, h := range finalized {
		if h <= stoppedAt {
			t.Fatalf("block %d executed again after restart at %d (finalized %v)", h, stoppedAt, finalized)
		}
	}
	st, err := n2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Height < stoppedAt {
		t.Fatalf("height after restart %d, before %d", st.Height, stoppedAt)
	}
	if st.Height == stoppedAt && st.AppHash != fmt.Sprintf("%X", stoppedHash) {
		t.Fatalf("app hash after restart %s, before %X", st.AppHash, stoppedHash)
	}

	// The chain goes on: the same account continues its nonces.
	c2 := chain.NewClient(n2.Transport())
	res, err := c2.Submit(ctx, k, chain.MsgCreateMember{Handle: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Height <= stoppedAt {
		t.Fatalf("tx after restart committed at %d, not above %d", res.Height, stoppedAt)
	}
	if got := memberCount(ctx, t, n2.Transport()); got != 4 {
		t.Fatalf("members after restart = %d, want 4", got)
	}
}

// testTransport runs the same checks over the local and the remote
// transport.
func testTransport(ctx context.Context, t *testing.T, tr chain.Transport) {
	c := chain.NewClient(tr)
	k := mustKey(t)

	start, err := tr.LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Submit(ctx, k, chain.MsgCreateMember{Handle: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Height <= start || len(ok.TxHash) != 32 || ok.Result.Code != 0 || len(ok.Result.Events) == 0 ||
		ok.Result.Events[0].Type != "MemberCreated" {
		t.Fatalf("committed = %+v (start height %d)", ok, start)
	}

	// A transaction that fails in its block: committed, with its code.
	failed, err := c.Submit(ctx, k, chain.MsgCreateChannel{Member: 999})
	if !errors.Is(err, chain.ErrMemberNotFound) {
		t.Fatalf("failing tx: %v, want ErrMemberNotFound", err)
	}
	if failed.Height == 0 || failed.Result.Code != chain.CodeMemberNotFound || len(failed.Result.Events) != 0 {
		t.Fatalf("failing tx committed = %+v", failed)
	}

	// A transaction CheckTx rejects comes back as the chain's error.
	if _, err := tr.BroadcastTx(ctx, []byte("not a transaction")); !errors.Is(err, chain.ErrBadTx) {
		t.Fatalf("garbage tx: %v, want ErrBadTx", err)
	}
	// A lead's message from a new key is refused at mempool admission,
	// as the chain's error, from no block.
	stranger := mustKey(t)
	spam, err := c.Submit(ctx, stranger, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	if !errors.Is(err, chain.ErrUnauthorized) || spam.Height != 0 {
		t.Fatalf("a new key's create_storage_bucket = %+v, %v; want ErrUnauthorized before a block", spam, err)
	}
	replay := mustSign(t, k, 1, chain.MsgCreateMember{Handle: "again"}) // nonce 1 is used
	if _, err := tr.BroadcastTx(ctx, replay); !errors.Is(err, chain.ErrBadNonce) {
		t.Fatalf("replayed nonce: %v, want ErrBadNonce", err)
	}
	// The very same bytes again are refused before the application sees them.
	dup := mustSign(t, k, 1, chain.MsgCreateMember{Handle: "ok"})
	if _, err := tr.BroadcastTx(ctx, dup); !errors.Is(err, ErrDuplicateTx) {
		t.Fatalf("duplicate tx: %v, want ErrDuplicateTx", err)
	}

	// Events of the block: the successful tx's only.
	ev, err := tr.BlockEvents(ctx, ok.Height)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Height != ok.Height || ev.Time.IsZero() || len(ev.Events) != len(ok.Result.Events) ||
		ev.Events[0].Type != "MemberCreated" {
		t.Fatalf("block events = %+v", ev)
	}
	ev, err = tr.BlockEvents(ctx, failed.Height)
	if err != nil || len(ev.Events) != 0 {
		t.Fatalf("events of the block with the failed tx = %+v, %v; want none", ev, err)
	}

	// Queries, including a runtime error.
	if _, err := tr.Query(ctx, "/nope", nil); !errors.Is(err, chain.ErrUnknownQuery) {
		t.Fatalf("unknown query: %v, want ErrUnknownQuery", err)
	}
	acct, err := c.Account(ctx, k.Account())
	if err != nil || acct.Nonce != 2 {
		t.Fatalf("account = %+v, %v; want nonce 2", acct, err)
	}

	// Heights: reached ones return at once; a future one waits; a cancelled
	// wait returns the context's error.
	latest, err := tr.LatestHeight(ctx)
	if err != nil || latest < failed.Height {
		t.Fatalf("latest height %d, %v; want >= %d", latest, err, failed.Height)
	}
	if err := tr.WaitForHeight(ctx, latest+1); err != nil {
		t.Fatal(err)
	}
	// The refused transaction wrote nothing, not even a nonce.
	if acct, err := c.Account(ctx, stranger.Account()); err != nil || acct.Nonce != 0 {
		t.Fatalf("refused account = %+v, %v; want nonce 0", acct, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := tr.WaitForHeight(short, latest+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForHeight past its deadline: %v", err)
	}
	if _, err := tr.BlockEvents(ctx, latest+1000); err == nil {
		t.Fatal("events of a future block: no error")
	}
}

func TestLocalTransport(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	n := startNode(t, t.TempDir(), WithGenesis(testGenesis(t)))
	testTransport(ctx, t, n.Transport())
}

func TestRemoteTransport(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	n := startNode(t, t.TempDir(), WithGenesis(testGenesis(t)))
	tr, err := Dial(n.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	testTransport(ctx, t, tr)

	st, err := FetchStatus(ctx, n.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != n.NodeID() || st.ChainID != n.ChainID() || st.Height == 0 || !st.Validator ||
		st.P2PAddress != n.P2PAddress() {
		t.Fatalf("status = %+v", st)
	}
}

func TestConcurrentSubmits(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	n := startNode(t, t.TempDir(), WithGenesis(testGenesis(t)))
	c := chain.NewClient(n.Transport())
	const accounts, perAccount = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, accounts*perAccount)
	for range accounts {
		k := mustKey(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perAccount {
				if _, err := c.Submit(ctx, k, chain.MsgCreateMember{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := memberCount(ctx, t, n.Transport()); got != accounts*perAccount {
		t.Fatalf("members = %d, want %d", got, accounts*perAccount)
	}
}

func TestStopWakesWaiters(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	home := t.TempDir()
	n, err := New(home, WithGenesis(testGenesis(t)),
		WithRPCAddr(""), WithP2PAddr(freeAddr(t)))
	if err != nil {
		t.Fatal(err)
	}
	if n.RPCAddress() != "" {
		t.Fatalf("RPC address %q with the RPC server off", n.RPCAddress())
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr := n.Transport()
	done := make(chan error, 1)
	go func() { done <- tr.WaitForHeight(ctx, 1<<40) }()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("WaitForHeight after stop: %v, want ErrStopped", err)
		}
	case <-ctx.Done():
		t.Fatal("WaitForHeight did not return after Stop")
	}
	if err := n.Start(ctx); err == nil {
		t.Fatal("a stopped node started again")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(filepath.Join(dir, "empty")); err == nil {
		t.Error("a home without genesis or genesis option: no error")
	}
	if _, err := New(filepath.Join(dir, "bad"), WithGenesis(testGenesis(t)), WithRPCAddr("nope")); err == nil {
		t.Error("a malformed RPC address: no error")
	}
	a, err := New(filepath.Join(dir, "a"), WithGenesis(testGenesis(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(filepath.Join(dir, "b"), WithGenesis(testGenesis(t)))
	if err != nil {
		t.Fatal(err)
	}
	// Joining a network with a home that belongs to another one fails.
	if _, err := New(b.Home(), WithGenesisDoc(a.GenesisFile())); err == nil {
		t.Error("joining with the home of another network: no error")
	}
	// Joining twice with the same genesis is fine.
	j1, err := New(filepath.Join(dir, "j"), WithGenesisDoc(a.GenesisFile()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(j1.Home(), WithGenesisDoc(a.GenesisFile())); err != nil {
		t.Errorf("joining again with the same genesis: %v", err)
	}
	ga, _ := os.ReadFile(a.GenesisFile())
	gj, _ := os.ReadFile(j1.GenesisFile())
	if !bytes.Equal(ga, gj) || GenesisPath(j1.Home()) != j1.GenesisFile() {
		t.Error("joined genesis differs from the network's")
	}
	if j1.IsValidator() || !a.IsValidator() {
		t.Error("validator roles: the joining node is a validator or the first is not")
	}
}

func TestStartFailureReleasesHome(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	home := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	n, err := New(home, WithGenesis(testGenesis(t)), WithRPCAddr(freeAddr(t)), WithP2PAddr(busy.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err == nil {
		n.Stop()
		t.Fatal("started on a port in use")
	}
	// The failed start released its databases: the home starts now.
	startNode(t, home)
	if _, err := New(home, WithPersistentPeers("not-a-peer")); err == nil {
		t.Fatal("a malformed peer address: no error")
	}
}
