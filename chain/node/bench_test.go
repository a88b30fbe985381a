package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// benchSubmitters is how many accounts submit at once, each one transaction
// at a time: enough to fill a 100 ms block at several thousand tx/s.
const benchSubmitters = 512

// benchTxsPerOp is how many transactions one benchmark iteration commits, so
// that `make bench` (-benchtime 1x) measures a steady stream, not one
// transaction.
const benchTxsPerOp = 4096

// BenchmarkSignedTxCommit submits benchTxsPerOp signed MsgCreateMember
// transactions per iteration from benchSubmitters accounts concurrently to
// an embedded validator (100 ms blocks) through chain.Client, each waiting
// for its commit. It reports:
//
//   - tx_per_s: transactions committed per second;
//   - latency_blocks: mean of (height of inclusion − committed height when
//     submitted);
//   - latency_ms: mean submit → commit time;
//   - ceiling_tx_per_s: the same transactions executed directly on the
//     state machine (FinalizeBlock+Commit, no consensus, no network) in the
//     same run, and ratio = tx_per_s / ceiling_tx_per_s.
func BenchmarkSignedTxCommit(b *testing.B) {
	ctx := context.Background()
	n := startNode(b, b.TempDir(), WithGenesis(testGenesis(b)))
	tr := n.Transport()
	c := chain.NewClient(tr)
	keys := make([]chain.Key, benchSubmitters)
	for i := range keys {
		keys[i] = mustKey(b)
	}
	// Warm up: the first block, and the client's chain ID.
	if err := tr.WaitForHeight(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := c.ChainID(ctx); err != nil {
		b.Fatal(err)
	}

	total := int64(b.N) * benchTxsPerOp
	var next, blocks, latencyNs atomic.Int64
	b.ResetTimer()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for w := range benchSubmitters {
		g.Go(func() error {
			for next.Add(1) <= total {
				at, err := tr.LatestHeight(gctx)
				if err != nil {
					return err
				}
				t0 := time.Now()
				res, err := c.Submit(gctx, keys[w], chain.MsgCreateMember{})
				if err != nil {
					return fmt.Errorf("account %d: %w", w, err)
				}
				latencyNs.Add(int64(time.Since(t0)))
				blocks.Add(res.Height - at)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	tps := float64(total) / elapsed.Seconds()
	b.ReportMetric(tps, "tx_per_s")
	b.ReportMetric(float64(blocks.Load())/float64(total), "latency_blocks")
	b.ReportMetric(float64(latencyNs.Load())/float64(total)/1e6, "latency_ms")
	ceiling := machineCeiling(b, n.ChainID(), int(total))
	b.ReportMetric(ceiling, "ceiling_tx_per_s")
	b.ReportMetric(tps/ceiling, "ratio")
}

// machineCeiling measures how fast the state machine alone executes n
// signed MsgCreateMember transactions in blocks of up to 1000.
func machineCeiling(b *testing.B, chainID string, n int) float64 {
	b.Helper()
	m, err := state.New(b.TempDir(), state.WithLogger(discardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	g := testGenesis(b)
	g.ChainID = chainID
	if _, err := m.InitChain(g, time.Now()); err != nil {
		b.Fatal(err)
	}
	keys := make([]chain.Key, benchSubmitters)
	for i := range keys {
		keys[i] = mustKey(b)
	}
	txs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[i%len(keys)]
			tx, err := chain.SignTxForChain(chainID, k, uint64(i/len(keys))+1, chain.MsgCreateMember{})
			if err != nil {
				panic(err)
			}
			txs[i] = tx
		}()
	}
	wg.Wait()
	start := time.Now()
	for h, i := int64(1), 0; i < n; h++ {
		j := min(i+1000, n)
		for _, tx := range txs[i:j] { // CheckTx, as the mempool does
			if err := m.CheckTx(tx); err != nil {
				b.Fatal(err)
			}
		}
		res, _, err := m.FinalizeBlock(chain.BlockInfo{Height: h, Time: time.Now(), Hash: make([]byte, 32)}, txs[i:j])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Code != 0 {
				b.Fatalf("ceiling tx failed: %d %s", r.Code, r.Log)
			}
		}
		if err := m.Commit(); err != nil {
			b.Fatal(err)
		}
		i = j
	}
	return float64(n) / time.Since(start).Seconds()
}
