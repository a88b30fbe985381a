package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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
