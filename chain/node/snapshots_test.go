package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/internal/fsutil"
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

func TestSnapshotStoreKeepsTheNewestOnDisk(t *testing.T) {
	m, err := state.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.InitChain(testGenesis(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := openSnapshotStore(dir, keepSnapshots, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	for h := int64(1); h <= keepSnapshots+2; h++ {
		if _, _, err := m.FinalizeBlock(chain.BlockInfo{Height: h, Time: time.Now(), Hash: make([]byte, 32)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := s.write(m); err != nil {
			t.Fatal(err)
		}
	}
	heights := func(s *snapshotStore) []int64 {
		var out []int64
		for _, man := range s.list() {
			out = append(out, man.Height)
		}
		return out
	}
	want := []int64{3, 4, 5, 6}
	if got := heights(s); !slices.Equal(got, want) {
		t.Fatalf("kept %v; want %v", got, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != keepSnapshots {
		t.Fatalf("%d entries on disk; want %d (older snapshots deleted)", len(ents), keepSnapshots)
	}
	if _, err := s.chunk(1, 0); !errors.Is(err, errNoChunk) {
		t.Fatalf("chunk of a pruned snapshot: %v; want errNoChunk", err)
	}
	// The chunks on disk are the state's snapshot.
	want6, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.chunk(6, 0)
	if err != nil || !bytes.Equal(c, want6.Chunks[0]) {
		t.Fatalf("chunk 0 at height 6: %d bytes, %v; want the state's export", len(c), err)
	}

	// A write that never finished and a corrupt chunk: reopening drops the
	// first, and the second is refused when read.
	if err := os.Mkdir(filepath.Join(dir, "snapshot-123.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "5", chunkName(0)), []byte("rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := openSnapshotStore(dir, keepSnapshots, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := heights(s2); !slices.Equal(got, want) {
		t.Fatalf("reopened, kept %v; want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshot-123.tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("half-written snapshot still on disk: %v", err)
	}
	if _, err := s2.chunk(5, 0); err == nil || errors.Is(err, errNoChunk) {
		t.Fatalf("corrupt chunk read: %v; want a corruption error", err)
	}
}

func TestStateSyncFromRestartedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("state sync waits for snapshot discovery")
	}
	ctx := testCtx(t, 3*time.Minute)
	home := t.TempDir()
	blocks := []Option{WithBlockInterval(50 * time.Millisecond), WithEmptyBlockInterval(100 * time.Millisecond)}
	first, err := New(home, append([]Option{WithRPCAddr(freeAddr(t)), WithP2PAddr(freeAddr(t)), WithLogger(testLogger()),
		WithGenesis(testGenesis(t)), WithSnapshotInterval(5)}, blocks...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	k, _ := chain.GenerateKey()
	if _, err := chain.NewClient(first.Transport()).Submit(ctx, k, chain.MsgCreateMember{Handle: "early"}); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(home, SnapshotsDir, "10", "manifest.json")
	eventually(ctx, t, "the snapshot at height 10 is on disk", func() (bool, error) {
		_, err := os.Stat(manifest)
		return err == nil, nil
	})
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	// Restarted without taking snapshots: what it offers is what it kept.
	v := startNode(t, home, append([]Option{WithSnapshotInterval(0)}, blocks...)...)
	lb, err := v.Transport().(*localTransport).LightBlock(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	at, err := v.Transport().LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := state.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &finalizeRecorder{Machine: m}
	joiner := startNode(t, t.TempDir(), append([]Option{WithGenesisDoc(v.GenesisFile()), WithPersistentPeers(v.P2PAddress()),
		WithMachine(rec), WithStateSync(StateSync{RPCServers: []string{v.RPCAddress()}, TrustHeight: 2, TrustHash: lb.Hash()})}, blocks...)...)
	eventually(ctx, t, "the joiner catches up", func() (bool, error) {
		h, err := joiner.Transport().LatestHeight(ctx)
		return err == nil && h >= at, err
	})
	if first := rec.first(); first <= 10 {
		t.Fatalf("the joiner executed block %d: it replayed instead of restoring the kept snapshot", first)
	}
	got, err := chain.NewClient(joiner.Transport()).Member(ctx, 0)
	if err != nil || got.Handle != "early" {
		t.Fatalf("member from before the snapshot, read on the joiner: %+v, %v", got, err)
	}
}

// restoringApp returns an App over a fresh machine with a snapshot store
// in a temporary directory, ready to be offered snapshots.
func restoringApp(t *testing.T) (*App, string) {
	t.Helper()
	m, err := state.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	dir := t.TempDir()
	s, err := openSnapshotStore(dir, keepSnapshots, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	a := NewApp(m, testLogger())
	a.snaps.store = s
	return a, dir
}

func TestApplySnapshotChunkRefusesAnOversizedChunk(t *testing.T) {
	a, dir := restoringApp(t)
	ctx := testCtx(t, time.Minute)
	big := bytes.Repeat([]byte{7}, state.SnapshotChunkSize+1)
	h := sha256.Sum256(big)
	offer, err := a.OfferSnapshot(ctx, &abci.OfferSnapshotRequest{
		Snapshot: &abci.Snapshot{Height: 5, Format: state.SnapshotFormat, Chunks: 1, Metadata: h[:]},
		AppHash:  make([]byte, 32)})
	if err != nil || offer.Result != abci.OFFER_SNAPSHOT_RESULT_ACCEPT {
		t.Fatalf("offer = %v, %v; want accept", offer, err)
	}
	res, err := a.ApplySnapshotChunk(ctx, &abci.ApplySnapshotChunkRequest{Index: 0, Chunk: big, Sender: "peer-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != abci.APPLY_SNAPSHOT_CHUNK_RESULT_REJECT_SNAPSHOT || !slices.Equal(res.RejectSenders, []string{"peer-1"}) {
		t.Fatalf("apply oversized chunk = %v; want reject snapshot and its sender", res)
	}
	// Nothing was spooled, and the snapshot is no longer on offer.
	if _, err := os.Stat(filepath.Join(dir, "restore.tmp", chunkName(0))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("oversized chunk spooled to disk: %v", err)
	}
	res, err = a.ApplySnapshotChunk(ctx, &abci.ApplySnapshotChunkRequest{Index: 0, Chunk: big[:10], Sender: "peer-2"})
	if err != nil || res.Result != abci.APPLY_SNAPSHOT_CHUNK_RESULT_ABORT {
		t.Fatalf("apply after the snapshot was refused = %v, %v; want abort", res, err)
	}
}

func TestOfferSnapshotRefusesMoreThanTheFreeDisk(t *testing.T) {
	a, dir := restoringApp(t)
	free, _, err := fsutil.Space(dir)
	if err != nil {
		t.Skipf("free disk space unknown on this platform: %v", err)
	}
	chunks := free/state.SnapshotChunkSize + 1
	if chunks > maxSnapshotChunks {
		t.Skipf("%d bytes free: more than the largest snapshot accepted", free)
	}
	offer, err := a.OfferSnapshot(testCtx(t, time.Minute), &abci.OfferSnapshotRequest{
		Snapshot: &abci.Snapshot{Height: 5, Format: state.SnapshotFormat, Chunks: uint32(chunks),
			Metadata: make([]byte, sha256.Size*int(chunks))},
		AppHash: make([]byte, 32)})
	if err != nil || offer.Result != abci.OFFER_SNAPSHOT_RESULT_REJECT {
		t.Fatalf("offer of %d chunks with %d bytes free = %v, %v; want reject", chunks, free, offer, err)
	}
}
