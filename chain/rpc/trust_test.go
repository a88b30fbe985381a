package rpc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/chain/verify"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testKey(name string) chain.Key {
	seed := sha256.Sum256([]byte("satchel rpc test " + name))
	k, err := chain.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

var quiet = slog.New(slog.DiscardHandler)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startNode runs one embedded validator with its RPC on loopback.
func startNode(t testing.TB) *node.Node {
	t.Helper()
	lead := testKey("lead")
	n, err := node.New(t.TempDir(),
		node.WithRPCAddr(freeAddr(t)), node.WithP2PAddr(freeAddr(t)), node.WithLogger(quiet),
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	return n
}

// Open over HTTP proves every read from the genesis validators or from a
// trusted header, and the client reads its own write.
func TestOpenProvesReads(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	if err := n.Transport().WaitForHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	lb, err := n.Transport().(verify.Source).LightBlock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, trust := range map[string]rpc.Trust{
		"genesis":        {Genesis: n.GenesisFile()},
		"trusted header": {Height: 1, Hash: hex.EncodeToString(lb.Hash())},
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := rpc.Open(ctx, n.RPCAddress(), trust, rpc.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if _, ok := tr.(*rpc.Proven); !ok {
				t.Fatalf("Open returned %T, not a proving transport", tr)
			}
			c := chain.NewClient(tr)
			res, err := c.Submit(ctx, testKey("alice"), chain.MsgCreateMember{Handle: "alice-" + strings.ReplaceAll(name, " ", "-")})
			if err != nil {
				t.Fatal(err)
			}
			created, ok := chain.FindEvent[chain.MemberCreated](res.Result.Events)
			if !ok {
				t.Fatalf("no MemberCreated in %+v", res.Result)
			}
			m, err := c.Member(ctx, created.Member)
			if err != nil || m.Handle != created.Handle {
				t.Fatalf("Member = %+v, %v", m, err)
			}
		})
	}
}

// Without a trust root Open refuses to read unproven, unless told to
// trust the endpoint; a root the endpoint does not match is a lie named
// with its URL.
func TestOpenTrustRoot(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	if _, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{}); !errors.Is(err, rpc.ErrNoTrustRoot) {
		t.Fatalf("Open without a trust root = %v; want ErrNoTrustRoot", err)
	}
	if _, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{Height: 3}); err == nil || errors.Is(err, rpc.ErrNoTrustRoot) {
		t.Fatalf("Open with a height but no hash = %v; want a refusal naming the missing hash", err)
	}
	plain, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{TrustRPC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := plain.(*rpc.Proven); ok {
		t.Fatal("TrustRPC still proves reads")
	}
	if _, err := chain.NewClient(plain).Params(ctx); err != nil {
		t.Fatalf("unproven read: %v", err)
	}
	bad := strings.Repeat("ab", 32)
	_, err = rpc.Open(ctx, n.RPCAddress(), rpc.Trust{Height: 1, Hash: bad}, rpc.WithLogger(quiet))
	if !errors.Is(err, verify.ErrLyingEndpoint) || !strings.Contains(err.Error(), n.RPCAddress()) {
		t.Fatalf("Open with a foreign trusted hash = %v; want ErrLyingEndpoint naming %s", err, n.RPCAddress())
	}
}

// hider is an endpoint that hides every record it was asked for: its
// proven answers say "not found" where the chain holds something.
type hider struct {
	chain.Transport
	verify.Source
}

func (h hider) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	b, err := h.Transport.Query(ctx, path, data)
	if err != nil || path != chain.QueryProven {
		return b, err
	}
	var w state.Witness
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	for i := range w.Gets {
		w.Gets[i].Found, w.Gets[i].Value = false, nil
	}
	return json.Marshal(w)
}

// A client on a proving transport refuses a lying endpoint's answer and
// names it; the same lie through TrustRPC is believed.
func TestProveRefusesLies(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	honest := chain.NewClient(n.Transport())
	res, err := honest.Submit(ctx, testKey("bob"), chain.MsgCreateMember{Handle: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	created, _ := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	if err := n.Transport().WaitForHeight(ctx, res.Height+2); err != nil {
		t.Fatal(err)
	}
	liar := hider{Transport: n.Transport(), Source: n.Transport().(verify.Source)}
	pt, err := rpc.Prove(ctx, liar, "liar.example:26657", rpc.Trust{Genesis: n.GenesisFile()}, rpc.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	m, err := chain.NewClient(pt).Member(ctx, created.Member)
	if !errors.Is(err, verify.ErrLyingEndpoint) || !strings.Contains(err.Error(), "liar.example:26657") {
		t.Fatalf("Member through a lying endpoint = %+v, %v; want ErrLyingEndpoint naming it", m, err)
	}
	trusting, err := rpc.Prove(ctx, liar, "liar.example:26657", rpc.Trust{TrustRPC: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain.NewClient(trusting).Member(ctx, created.Member); err != nil {
		t.Fatalf("TrustRPC read the plain query: %v", err)
	}
}

// Proven answers trail the head by a block, yet a proven client finds what
// another client has just committed, and two clients of one account, one
// after the other (two commands), sign with fresh nonces.
func TestProvenReadsSeeTheHead(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	open := func() *chain.Client {
		tr, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{Genesis: n.GenesisFile()}, rpc.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return chain.NewClient(tr)
	}
	reader := open()
	var last chain.StorageBucketCreated
	for i := range 3 {
		// The same transaction each time, as a command run twice signs it.
		res, err := open().Submit(ctx, testKey("lead"), chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
		if err != nil {
			t.Fatalf("submission %d of one account through a new proven client: %v", i, err)
		}
		last, _ = chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
	}
	if b, err := reader.StorageBucket(ctx, last.Bucket); err != nil || b.ID != last.Bucket {
		t.Fatalf("bucket %d just committed, read at once = %+v, %v", last.Bucket, b, err)
	}
}

// A read marked AcceptLag is answered from the state the last signed header
// covers at once; an unmarked first read waits for the next block, which an
// idle chain (no empty blocks) does not make.
func TestAcceptLagAnswersWithoutTheNextBlock(t *testing.T) {
	lead := testKey("lead")
	ctx := testCtx(t)
	n := startIdleNode(t, ctx, lead)
	res, err := chain.NewClient(n.Transport()).Submit(ctx, lead, chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	created, _ := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
	// The block after the transaction's carries its app hash; then the
	// chain idles.
	if err := n.Transport().WaitForHeight(ctx, res.Height+1); err != nil {
		t.Fatal(err)
	}
	tr, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{Genesis: n.GenesisFile()}, rpc.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	c := chain.NewClient(tr)

	lagged, cancel := context.WithTimeout(rpc.AcceptLag(ctx), 20*time.Second)
	defer cancel()
	b, err := c.StorageBucket(lagged, created.Bucket)
	if err != nil || b.ID != created.Bucket {
		t.Fatalf("read accepting a block of lag on an idle chain = %+v, %v; want bucket %d at once", b, err, created.Bucket)
	}
	h, err := n.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if _, err := c.StorageBucket(short, created.Bucket); !errors.Is(err, context.DeadlineExceeded) {
		if now, _ := n.Transport().LatestHeight(ctx); now == h {
			t.Fatalf("unmarked first read on an idle chain (height %d) = %v; want it waiting for the next block", h, err)
		}
	}
}

// startIdleNode starts a node whose genesis makes lead both leads and
// which makes no empty blocks: a block comes only with a transaction.
// A port freeAddr found may be taken by another test process before the
// node binds it: such a start is tried again on fresh ports.
func startIdleNode(t *testing.T, ctx context.Context, lead chain.Key) *node.Node {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n, err := node.New(t.TempDir(),
			node.WithRPCAddr(freeAddr(t)), node.WithP2PAddr(freeAddr(t)), node.WithLogger(quiet),
			node.WithEmptyBlockInterval(time.Hour),
			node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())))
		if err != nil {
			t.Fatal(err)
		}
		err = n.Start(ctx)
		// (CometBFT may not wrap the listener's error: its text too.)
		inUse := err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use"))
		if inUse && attempt < 3 {
			_ = n.Stop()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Stop() })
		return n
	}
}
