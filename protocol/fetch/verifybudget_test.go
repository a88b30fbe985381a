package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// diskCounter is the block store's protocol view counting the bytes read
// from disk: whole blocks (Get) and ranges (ReadRange).
type diskCounter struct {
	blockstore.ProtocolBlocks
	read atomic.Int64
}

func (d *diskCounter) Get(c cid.Cid) ([]byte, error) {
	b, err := d.ProtocolBlocks.Get(c)
	d.read.Add(int64(len(b)))
	return b, err
}

func (d *diskCounter) ReadRange(c cid.Cid, off, n uint64) ([]byte, uint64, error) {
	b, size, err := d.ProtocolBlocks.ReadRange(c, off, n)
	d.read.Add(int64(len(b)))
	return b, size, err
}

// A peer reading one byte of each of many blocks not verified lately, many
// at once on several streams, makes the provider read no more from disk
// than its verification budget (burst + rate × time + one read's hold)
// beyond what it is sent; past it, such ranges are REFUSED and counted,
// while a whole-block GET is still served and, having verified the block,
// lets its ranges be read alone.
func TestRangedGetVerifyBudget(t *testing.T) {
	net := testnet.New(t, 2)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	disk := &diskCounter{ProtocolBlocks: bs.ForProtocols()}
	const (
		rate  = 64 << 10 // bytes a second
		burst = 1 << 20
		block = 1 << 20
	)
	reg := prometheus.NewRegistry()
	h := fetch.NewHandler(disk, &policy{}, fetch.WithRangeVerifyBudget(rate, burst), fetch.WithMetrics(reg),
		fetch.WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(net.Host(1).Protocol())
	t.Cleanup(func() { _ = h.Close() })
	// Four clients of one peer: four streams, each with GETs in flight.
	clients := make([]*fetch.Client, 4)
	for i := range clients {
		clients[i] = fetch.NewClient(net.Host(0).Libp2p())
		t.Cleanup(func() { _ = clients[i].Close() })
	}
	f := clients[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	blocks := make([][]byte, 64)
	cids := make([]cid.Cid, len(blocks))
	for i := range blocks {
		blocks[i] = benchutil.Rand(uint64(100+i), block)
		cids[i] = chunker.ChunkCID(blocks[i])
		if err := bs.Put(cids[i], blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	provider := net.Host(1).ID()
	start := time.Now()
	// All at once, as a reader with many GETs in flight sends them: they
	// must not all pass on the same tokens.
	var mu sync.Mutex
	var sent, refused int64
	var firstRefused = -1
	var wg sync.WaitGroup
	for i, c := range cids {
		wg.Go(func() {
			got, _, err := clients[i%len(clients)].GetRange(ctx, provider, c, 5, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && bytes.Equal(got, blocks[i][5:6]):
				sent += int64(len(got))
			case errors.Is(err, fetch.ErrRefused):
				refused++
				if firstRefused < 0 {
					firstRefused = i
				}
			default:
				t.Errorf("1-byte range of block %d: %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	elapsed := time.Since(start)
	read := disk.read.Load()
	ceiling := sent + burst + fetch.MaxGetBytes + int64(rate*elapsed.Seconds()) + 1
	t.Logf("%d 1-byte ranges of unverified blocks: %d sent, %d refused; %d bytes read from disk (ceiling %d) in %v",
		len(cids), sent, refused, read, ceiling, elapsed)
	if read > ceiling {
		t.Fatalf("%d bytes read from disk to send %d, over the budget's %d", read, sent, ceiling)
	}
	if refused == 0 || sent == 0 {
		t.Fatalf("%d sent, %d refused: want the budget to let some through and refuse the rest", sent, refused)
	}
	if got := counter(t, reg, "satchel_provider_fetch_range_verify_refused_total"); got != float64(refused) {
		t.Fatalf("refusals counted %v, want %d", got, refused)
	}

	// A refused block read whole is served (whole reads cost only what
	// they send) and verifies it: its ranges are then read alone.
	c := cids[firstRefused]
	whole, err := f.GetBlock(ctx, provider, c)
	if err != nil || !bytes.Equal(whole, blocks[firstRefused]) {
		t.Fatalf("whole GET of a block whose range was refused: %v", err)
	}
	before := disk.read.Load()
	got, _, err := f.GetRange(ctx, provider, c, 5, 1)
	if err != nil || !bytes.Equal(got, blocks[firstRefused][5:6]) {
		t.Fatalf("range of a block just verified: %q, %v", got, err)
	}
	if n := disk.read.Load() - before; n != 1 {
		t.Fatalf("range of a block just verified read %d bytes from disk, want 1", n)
	}
}

// Fresh peer IDs cost nothing, so the node's verification budget stands
// behind each peer's: three readers, each within its own budget (8 MiB,
// never refilled, against six 1-byte ranges of 1 MiB blocks not verified
// lately), together spend the node's 8 MiB, and past it ranges are
// REFUSED busy (counted as the node's refusals, none as a peer's) with the
// documented answer — read the whole block, which is served and makes
// the block's ranges cheap.
func TestRangedGetNodeVerifyBudget(t *testing.T) {
	const (
		readers = 3
		each    = 6
		budget  = 8 << 20
	)
	net := testnet.New(t, readers+1)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	reg := prometheus.NewRegistry()
	h := fetch.NewHandler(bs.ForProtocols(), &policy{}, fetch.WithMetrics(reg), fetch.WithLogger(slog.New(slog.DiscardHandler)),
		fetch.WithRangeVerifyBudget(0, budget), fetch.WithRangeVerifyNodeBudget(0, budget))
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	blocks := make([][]byte, readers*each)
	cids := make([]cid.Cid, len(blocks))
	for i := range blocks {
		blocks[i] = benchutil.Rand(uint64(500+i), 1<<20)
		cids[i] = chunker.ChunkCID(blocks[i])
		if err := bs.Put(cids[i], blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	provider := net.Host(0).ID()
	var mu sync.Mutex
	var refused []error
	refusedBlock := -1
	var wg sync.WaitGroup
	for r := range readers {
		f := fetch.NewClient(net.Host(r + 1).Libp2p())
		t.Cleanup(func() { _ = f.Close() })
		wg.Go(func() {
			for i := r * each; i < (r+1)*each; i++ {
				got, _, err := f.GetRange(ctx, provider, cids[i], 5, 1)
				mu.Lock()
				switch {
				case err == nil && bytes.Equal(got, blocks[i][5:6]):
				case errors.Is(err, fetch.ErrRefused):
					refused = append(refused, err)
					refusedBlock = i
				default:
					t.Errorf("1-byte range of block %d: %q, %v", i, got, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(refused) == 0 {
		t.Fatalf("%d ranges of unverified blocks from %d peers served in full; want the node's %d-byte budget to refuse some",
			len(cids), readers, budget)
	}
	for _, err := range refused {
		if msg := err.Error(); !errors.Is(err, fetch.ErrProviderBusy) || !strings.Contains(msg, "shared by all peers") ||
			!strings.Contains(msg, "read the whole block (offset 0, length 0)") {
			t.Fatalf("refusal %v, want busy: the budget shared by all peers, read the whole block", err)
		}
	}
	if got := counter(t, reg, "satchel_provider_fetch_range_verify_refused_total", "budget", "node"); got != float64(len(refused)) {
		t.Fatalf("node refusals counted %v, want %d", got, len(refused))
	}
	if got := counter(t, reg, "satchel_provider_fetch_range_verify_refused_total", "budget", "peer"); got != 0 {
		t.Fatalf("peer refusals counted %v, want 0 (each peer stayed within its own budget)", got)
	}
	// The documented answer: the whole block is served, and verifies it.
	f := fetch.NewClient(net.Host(1).Libp2p())
	defer f.Close()
	if whole, err := f.GetBlock(ctx, provider, cids[refusedBlock]); err != nil || !bytes.Equal(whole, blocks[refusedBlock]) {
		t.Fatalf("whole GET of a block whose range the node refused: %v", err)
	}
	if got, _, err := f.GetRange(ctx, provider, cids[refusedBlock], 5, 1); err != nil || !bytes.Equal(got, blocks[refusedBlock][5:6]) {
		t.Fatalf("range of the block just read whole: %q, %v", got, err)
	}
}
