package node

import (
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// finalizeRecorder is the default machine, recording the heights it
// executes.
type finalizeRecorder struct {
	*state.Machine
	mu      sync.Mutex
	heights []int64
}

func (r *finalizeRecorder) FinalizeBlock(b chain.BlockInfo, txs [][]byte) ([]chain.TxResult, []byte, error) {
	r.mu.Lock()
	r.heights = append(r.heights, b.Height)
	r.mu.Unlock()
	return r.Machine.FinalizeBlock(b, txs)
}

func (r *finalizeRecorder) first() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.heights) == 0 {
		return 0
	}
	return r.heights[0]
}

func TestStateSyncJoinsWithoutReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("state sync waits for snapshot discovery")
	}
	ctx := testCtx(t, 2*time.Minute)
	v := startNode(t, t.TempDir(), WithGenesis(testGenesis(t)), WithSnapshotInterval(10),
		WithBlockInterval(50*time.Millisecond), WithEmptyBlockInterval(100*time.Millisecond))
	c := chain.NewClient(v.Transport())
	k, _ := chain.GenerateKey()
	if _, err := c.Submit(ctx, k, chain.MsgCreateMember{Handle: "early"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Transport().WaitForHeight(ctx, 12); err != nil {
		t.Fatal(err)
	}
	lb, err := v.Transport().(*localTransport).LightBlock(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}

	m, err := state.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &finalizeRecorder{Machine: m}
	joiner := startNode(t, t.TempDir(), WithGenesisDoc(v.GenesisFile()), WithPersistentPeers(v.P2PAddress()),
		WithMachine(rec), WithStateSync(StateSync{RPCServers: []string{v.RPCAddress()}, TrustHeight: 2, TrustHash: lb.Hash()}))
	eventually(ctx, t, "the joiner catches up", func() (bool, error) {
		h, err := joiner.Transport().LatestHeight(ctx)
		return err == nil && h >= 12, err
	})
	if first := rec.first(); first <= 10 {
		t.Fatalf("the joiner executed block %d: it replayed instead of restoring a snapshot", first)
	}
	got, err := chain.NewClient(joiner.Transport()).Member(ctx, 0)
	if err != nil || got.Handle != "early" {
		t.Fatalf("member from before the snapshot, read on the joiner: %+v, %v", got, err)
	}
}
