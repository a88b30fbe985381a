package state

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// BenchmarkFinalizeBlock measures signed transactions executed and
// committed per second by the machine alone (no consensus), 500 per block.
func BenchmarkFinalizeBlock(b *testing.B) {
	m, err := New(b.TempDir(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const perBlock = 500
	g := testGenesis()
	g.Limits.MembersPerBlock = perBlock
	if _, err := m.InitChain(g, genesisTime); err != nil {
		b.Fatal(err)
	}
	keys := make([]chain.Key, 50)
	for i := range keys {
		keys[i] = testKey(fmt.Sprint("bench", i))
	}
	nonce := uint64(0)
	b.ResetTimer()
	height := int64(0)
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(perBlock, b.N-done)
		txs := make([][]byte, n)
		for i := range txs {
			if i%len(keys) == 0 {
				nonce++
			}
			txs[i], _ = chain.SignTx(keys[i%len(keys)], nonce, chain.MsgCreateMember{})
		}
		b.StartTimer()
		height++
		res, _, err := m.FinalizeBlock(chain.BlockInfo{Height: height, Hash: defaultHash(height)}, txs)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Commit(); err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Code != 0 {
				b.Fatal(r.Log)
			}
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkProposalTxs measures what judging a proposal afresh
// (PrepareProposal) costs per transaction: 1,000 uploads from 50 members
// into their own bags, decoded already by CheckTx.
func BenchmarkProposalTxs(b *testing.B) {
	m, err := New(b.TempDir(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	g := testGenesis()
	g.Limits.MembersPerBlock = 50
	if _, err := m.InitChain(g, genesisTime); err != nil {
		b.Fatal(err)
	}
	keys := make([]chain.Key, 50)
	join := make([][]byte, len(keys))
	for i := range keys {
		keys[i] = testKey(fmt.Sprint("bench", i))
		join[i], _ = chain.SignTx(keys[i], 1, chain.MsgCreateMember{})
	}
	if _, _, err := m.FinalizeBlock(chain.BlockInfo{Height: 1, Hash: defaultHash(1)}, join); err != nil {
		b.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		b.Fatal(err)
	}
	txs := make([][]byte, 1000)
	for i := range txs {
		k := i % len(keys)
		spec := []chain.ObjectSpec{{Size: 1, ContentID: testCID(fmt.Sprint("bench", i))}}
		txs[i], _ = chain.SignTx(keys[k], uint64(i/len(keys))+2, chain.MsgRegisterDataObjects{Bag: chain.MemberBag(chain.MemberID(k)), Objects: spec})
		if err := m.CheckTx(txs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if got := m.ProposalTxs(txs); len(got) != len(txs) {
			b.Fatalf("proposal holds %d of %d", len(got), len(txs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(txs)), "µs/tx")
}
