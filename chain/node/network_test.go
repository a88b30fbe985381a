package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/verify"
)

// testNet is a network of validators in one process, each with its home,
// fixed addresses and the others as persistent peers; any may be stopped
// and restarted from its disk.
type testNet struct {
	t     testing.TB
	lead  chain.Key
	homes []string
	p2p   []string
	ids   []Identity
	nodes []*Node
}

func newTestNet(t testing.TB, validators int) *testNet {
	t.Helper()
	return newTestNetAt(t, validators, 0)
}

// newTestNetAt is newTestNet with a genesis naming app version appVersion
// (0: the newest).
func newTestNetAt(t testing.TB, validators int, appVersion uint64) *testNet {
	t.Helper()
	lead, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNet{t: t, lead: lead}
	for i := 0; i < validators; i++ {
		tn.homes = append(tn.homes, t.TempDir())
		tn.p2p = append(tn.p2p, freeAddr(t))
	}
	g := chain.DefaultGenesis(lead.Account(), lead.Account())
	g.Limits.MembersPerBlock = 1 << 20 // the benchmarks' free transaction, by the hundred per block
	if tn.ids, err = NewNetwork(tn.homes, g); err != nil {
		t.Fatal(err)
	}
	for _, home := range tn.homes {
		if appVersion != 0 {
			setGenesisAppVersion(t, GenesisPath(home), appVersion)
		}
	}
	tn.nodes = make([]*Node, validators)
	for i := range tn.homes {
		tn.start(i)
	}
	t.Cleanup(func() {
		for i := range tn.nodes {
			tn.stop(i)
		}
	})
	return tn
}

// peers are the P2P addresses of every node but i.
func (tn *testNet) peers(i int) []string {
	var out []string
	for j, id := range tn.ids {
		if j != i {
			out = append(out, id.NodeID+"@"+tn.p2p[j])
		}
	}
	return out
}

func netOptions(p2p string, peers []string) []Option {
	return []Option{
		WithRPCAddr(""), WithP2PAddr(p2p), WithLogger(testLogger()), WithPersistentPeers(peers...),
		WithBlockInterval(50 * time.Millisecond), WithEmptyBlockInterval(200 * time.Millisecond),
		WithRoundTimeout(time.Second), WithLocalPeers(),
	}
}

// start starts (or restarts, from its disk) node i.
func (tn *testNet) start(i int) {
	tn.t.Helper()
	n, err := New(tn.homes[i], netOptions(tn.p2p[i], tn.peers(i))...)
	if err != nil {
		tn.t.Fatal(err)
	}
	if err := n.Start(testCtx(tn.t, 30*time.Second)); err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[i] = n
}

func (tn *testNet) stop(i int) {
	if tn.nodes[i] == nil {
		return
	}
	if err := tn.nodes[i].Stop(); err != nil {
		tn.t.Errorf("stop node %d: %v", i, err)
	}
	tn.nodes[i] = nil
}

func (tn *testNet) height(i int) int64 {
	tn.t.Helper()
	h, err := tn.nodes[i].Transport().LatestHeight(context.Background())
	if err != nil {
		tn.t.Fatal(err)
	}
	return h
}

// waitHeight waits until node i commits height h, failing after d.
func (tn *testNet) waitHeight(i int, h int64, d time.Duration) {
	tn.t.Helper()
	if err := tn.nodes[i].Transport().WaitForHeight(testCtx(tn.t, d), h); err != nil {
		tn.t.Fatalf("node %d did not reach height %d (at %d): %v", i, h, tn.height(i), err)
	}
}

// sameChain checks that the running nodes have the same block at every
// height up to the lowest of their heights: no fork.
func (tn *testNet) sameChain() {
	tn.t.Helper()
	ctx := testCtx(tn.t, 30*time.Second)
	var running []int
	low := int64(-1)
	for i, n := range tn.nodes {
		if n != nil {
			running = append(running, i)
			if h := tn.height(i); low < 0 || h < low {
				low = h
			}
		}
	}
	for h := int64(1); h <= low; h++ {
		var want []byte
		for _, i := range running {
			lb, err := tn.nodes[i].Transport().(*localTransport).LightBlock(ctx, h)
			if err != nil {
				tn.t.Fatalf("node %d block %d: %v", i, h, err)
			}
			if want == nil {
				want = lb.Hash()
			} else if !bytes.Equal(lb.Hash(), want) {
				tn.t.Fatalf("fork at height %d: node %d has block %X, node %d %X", h, i, lb.Hash(), running[0], want)
			}
		}
	}
}

func (tn *testNet) client(i int) *chain.Client { return chain.NewClient(tn.nodes[i].Transport()) }

func newMember(t *testing.T, c *chain.Client, handle string) chain.MemberID {
	t.Helper()
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Submit(testCtx(t, 30*time.Second), k, chain.MsgCreateMember{Handle: handle})
	if err != nil {
		t.Fatalf("create member %s: %v", handle, err)
	}
	for _, e := range res.Result.Events {
		var m chain.MemberCreated
		if e.Type == m.EventType() && e.Decode(&m) == nil {
			return m.Member
		}
	}
	t.Fatalf("no MemberCreated in %+v", res.Result)
	return 0
}

func TestNetworkKeepsGoingWithOneValidatorDown(t *testing.T) {
	if testing.Short() {
		t.Skip("4 validators")
	}
	tn := newTestNet(t, 4)
	tn.waitHeight(0, 2, 30*time.Second)
	newMember(t, tn.client(0), "before")

	tn.stop(3)
	h := tn.height(0)
	during := newMember(t, tn.client(1), "during")
	tn.waitHeight(0, h+5, 30*time.Second)

	// The stopped validator restarts from its disk and catches up.
	tn.start(3)
	tn.waitHeight(3, tn.height(0), 60*time.Second)
	m, err := tn.client(3).Member(testCtx(t, 10*time.Second), during)
	if err != nil || m.Handle != "during" {
		t.Fatalf("member made while node 3 was down, read from it: %+v, %v", m, err)
	}
	tn.sameChain()
}

func TestNetworkHaltsWithoutQuorumAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("4 validators")
	}
	tn := newTestNet(t, 4)
	tn.waitHeight(0, 2, 30*time.Second)
	tn.stop(2)
	tn.stop(3)
	// Half the voting power is gone: no block gets +2/3 of the votes. At
	// most the block in flight commits; the next one does not come.
	h := tn.height(0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := tn.nodes[0].Transport().WaitForHeight(ctx, h+2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with 2 of 4 validators down, height went from %d to %d (%v)", h, tn.height(0), err)
	}
	tn.start(2)
	tn.start(3)
	tn.waitHeight(0, h+3, 60*time.Second)
	newMember(t, tn.client(2), "after")
	tn.waitHeight(3, tn.height(0), 60*time.Second)
	tn.sameChain()
}

func TestValidatorSetChangesByGovernance(t *testing.T) {
	if testing.Short() {
		t.Skip("4 validators")
	}
	tn := newTestNet(t, 4)
	ctx := testCtx(t, 2*time.Minute)
	tn.waitHeight(0, 2, 30*time.Second)

	// A fifth node joins as a full node.
	home := t.TempDir()
	id, err := ValidatorIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	p2p := freeAddr(t)
	var peers []string
	for j := range tn.ids {
		peers = append(peers, tn.ids[j].NodeID+"@"+tn.p2p[j])
	}
	fifth, err := New(home, append(netOptions(p2p, peers), WithGenesisDoc(GenesisPath(tn.homes[0])))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := fifth.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fifth.Stop() })
	if !bytes.Equal(fifth.ValidatorKey(), id.PubKey) {
		t.Fatal("ValidatorKey differs from the identity made in the home")
	}
	c := tn.client(0)
	// A client that trusts only the genesis validators reads through the
	// fifth node (a full node) before and after the set changes.
	trust, err := verify.TrustGenesisFile(GenesisPath(tn.homes[0]))
	if err != nil {
		t.Fatal(err)
	}
	vt, err := verify.New(ctx, fifth.Transport(), trust, verify.WithEndpoint("fifth"), verify.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	proven := chain.NewClient(vt)
	eventually(ctx, t, "the fifth node catches up", func() (bool, error) {
		st, err := fifth.Status(ctx)
		return err == nil && !st.CatchingUp, err
	})
	before := newMember(t, proven, "before")
	if m, err := proven.Member(ctx, before); err != nil || m.Handle != "before" {
		t.Fatalf("proven read before the change: %+v, %v", m, err)
	}
	stranger, _ := chain.GenerateKey()
	if _, err := c.Submit(ctx, stranger, chain.MsgSetValidator{PubKey: id.PubKey, Power: 10}); !errors.Is(err, chain.ErrUnauthorized) {
		t.Fatalf("a stranger set a validator: %v", err)
	}
	if _, err := c.Submit(ctx, tn.lead, chain.MsgSetValidator{PubKey: bytes.Repeat([]byte{1}, 32), Power: 0}); !errors.Is(err, chain.ErrInvalid) {
		t.Fatalf("removing an unknown validator: %v", err)
	}

	isValidator := func(n *Node) func() (bool, error) {
		return func() (bool, error) {
			st, err := n.Status(ctx)
			return err == nil && st.Validator, err
		}
	}
	if _, err := c.Submit(ctx, tn.lead, chain.MsgSetValidator{PubKey: id.PubKey, Power: 10}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "fifth node becomes a validator", isValidator(fifth))

	// Validator 0 leaves; the others (with the fifth) go on without it.
	if _, err := c.Submit(ctx, tn.lead, chain.MsgSetValidator{PubKey: tn.ids[0].PubKey, Power: 0}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "node 0 stops being a validator", func() (bool, error) {
		ok, err := isValidator(tn.nodes[1])()
		if err != nil {
			return false, err
		}
		st, err := tn.nodes[0].Status(ctx)
		return ok && err == nil && !st.Validator, err
	})
	vals, err := tn.client(1).Validators(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, v := range vals {
		keys[v.PubKey.String()] = true
	}
	if len(vals) != 4 || !keys[id.PubKey.String()] || keys[tn.ids[0].PubKey.String()] {
		t.Fatalf("validators in state = %+v", vals)
	}
	// Headers signed by the new set verify from the genesis set's trust.
	afterChange := newMember(t, proven, "after change")
	if m, err := proven.Member(ctx, afterChange); err != nil || m.Handle != "after change" {
		t.Fatalf("proven read after the change: %+v, %v", m, err)
	}
	// With node 0 gone, 4 of the 4 validators remain: blocks go on, and
	// with one more down (3 of 4, above 2/3) too.
	tn.stop(0)
	tn.stop(3)
	h := tn.height(1)
	newMember(t, tn.client(1), "after")
	tn.waitHeight(1, h+3, 60*time.Second)
	tn.sameChain()
}
