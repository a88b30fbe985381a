package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
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
	seed := sha256.Sum256([]byte("satchel verify test " + name))
	k, err := chain.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

var quiet = slog.New(slog.DiscardHandler)

var (
	lead  = testKey("lead")
	alice = testKey("alice")
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startNode runs one embedded validator in a temporary home.
func startNode(t testing.TB) *node.Node {
	t.Helper()
	n, err := node.New(t.TempDir(),
		node.WithRPCAddr(freeAddr(t)), node.WithP2PAddr(freeAddr(t)),
		node.WithLogger(quiet),
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

func verified(t *testing.T, n *node.Node, tr chain.Transport, name string) *verify.Transport {
	t.Helper()
	trust, err := verify.TrustGenesisFile(n.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	vt, err := verify.New(testCtx(t), tr, trust, verify.WithEndpoint(name), verify.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	return vt
}

func TestVerifiedReads(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	remote, err := node.Dial(n.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	for name, tr := range map[string]chain.Transport{"local": n.Transport(), "remote": remote} {
		t.Run(name, func(t *testing.T) {
			c := chain.NewClient(verified(t, n, tr, name))
			plain := chain.NewClient(n.Transport())
			res, err := c.Submit(ctx, alice, chain.MsgCreateMember{Handle: name})
			if err != nil {
				t.Fatal(err)
			}
			id := event[chain.MemberCreated](t, res).Member
			// The client reads its own write, proven.
			m, err := c.Member(ctx, id)
			if err != nil || m.Handle != name {
				t.Fatalf("Member(%d) = %+v, %v", id, m, err)
			}
			bags, err := c.Bags(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := plain.Bags(ctx)
			if len(bags) < len(want)-1 || len(bags) == 0 {
				t.Fatalf("proven bags %d, plain %d", len(bags), len(want))
			}
			if _, err := c.Bag(ctx, chain.ChannelBag(12345)); !errors.Is(err, chain.ErrBagNotFound) {
				t.Fatalf("unknown bag: %v; want ErrBagNotFound", err)
			}
			info, err := c.Info(ctx)
			if err != nil || info.ChainID != n.ChainID() || info.Height < res.Height {
				t.Fatalf("Info = %+v, %v", info, err)
			}
		})
	}
}

func event[T chain.EventPayload](t *testing.T, c chain.Committed) T {
	t.Helper()
	var zero T
	for _, e := range c.Result.Events {
		var v T
		if e.Type == zero.EventType() && e.Decode(&v) == nil {
			return v
		}
	}
	t.Fatalf("no %T event in %+v", zero, c.Result)
	return zero
}

// liar is an endpoint that alters what it answers.
type liar struct {
	chain.Transport
	src         verify.Source
	alterAnswer func(*state.Witness)
	alterHeader func(*types.LightBlock)
	bareError   error
}

func (l *liar) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if l.bareError != nil {
		return nil, l.bareError
	}
	b, err := l.Transport.Query(ctx, path, data)
	if err != nil || path != chain.QueryProven || l.alterAnswer == nil {
		return b, err
	}
	var w state.Witness
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	l.alterAnswer(&w)
	return json.Marshal(w)
}

func (l *liar) LightBlock(ctx context.Context, h int64) (*types.LightBlock, error) {
	lb, err := l.src.LightBlock(ctx, h)
	if err == nil && l.alterHeader != nil && h > 1 {
		l.alterHeader(lb)
	}
	return lb, err
}

func TestLyingEndpointIsRefused(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	honest := chain.NewClient(n.Transport())
	res, err := honest.Submit(ctx, alice, chain.MsgCreateMember{Handle: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	id := event[chain.MemberCreated](t, res).Member
	// Wait until the member's block is provable without MinHeight.
	if err := n.Transport().WaitForHeight(ctx, res.Height+1); err != nil {
		t.Fatal(err)
	}
	src := n.Transport().(verify.Source)
	cases := map[string]*liar{
		"altered value": {alterAnswer: func(w *state.Witness) {
			for i, g := range w.Gets {
				if g.Found && bytes.Contains(g.Value, []byte(`"alice"`)) {
					w.Gets[i].Value = bytes.Replace(g.Value, []byte(`"alice"`), []byte(`"mallory"`), 1)
				}
			}
		}},
		"hidden record": {alterAnswer: func(w *state.Witness) {
			for i, g := range w.Gets {
				if g.Found && bytes.Contains(g.Value, []byte(`"alice"`)) {
					w.Gets[i].Found, w.Gets[i].Value = false, nil
				}
			}
		}},
		"other question": {alterAnswer: func(w *state.Witness) { w.Path = chain.QueryBags }},
		"bare not found": {bareError: chain.Errorf(chain.ErrMemberNotFound, "member %d does not exist", id)},
		"forged app hash": {alterHeader: func(lb *types.LightBlock) {
			lb.AppHash = bytes.Repeat([]byte{7}, 32)
		}},
		"forged signer": {alterHeader: func(lb *types.LightBlock) {
			k := ed25519.GenPrivKey()
			lb.ValidatorSet = types.NewValidatorSet([]*types.Validator{types.NewValidator(k.PubKey(), 10)})
			lb.ValidatorsHash = lb.ValidatorSet.Hash()
		}},
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			l.Transport, l.src = n.Transport(), src
			c := chain.NewClient(verified(t, n, l, "liar.example:26657"))
			m, err := c.Member(ctx, id)
			if !errors.Is(err, verify.ErrLyingEndpoint) || errors.Is(err, chain.ErrNotFound) {
				t.Fatalf("Member = %+v, %v; want ErrLyingEndpoint, never taken for a proven not-found", m, err)
			}
			if !strings.Contains(err.Error(), "liar.example:26657") {
				t.Fatalf("error does not name the endpoint: %v", err)
			}
		})
	}
}

func TestTrustRootMustMatch(t *testing.T) {
	n := startNode(t)
	k := ed25519.GenPrivKey()
	other := types.NewValidatorSet([]*types.Validator{types.NewValidator(k.PubKey(), 10)})
	_, err := verify.New(testCtx(t), n.Transport(), verify.Trust{ChainID: n.ChainID(), Validators: other}, verify.WithEndpoint("node"), verify.WithLogger(quiet))
	if !errors.Is(err, verify.ErrLyingEndpoint) {
		t.Fatalf("New with foreign genesis validators = %v; want ErrLyingEndpoint", err)
	}
	if _, err := verify.New(testCtx(t), n.Transport(), verify.Trust{Height: 1, Hash: bytes.Repeat([]byte{1}, 32)}, verify.WithLogger(quiet)); !errors.Is(err, verify.ErrLyingEndpoint) {
		t.Fatalf("New with a wrong trusted hash = %v; want ErrLyingEndpoint", err)
	}
}
