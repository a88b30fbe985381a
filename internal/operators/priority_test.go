package operators_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/operators"
	"github.com/satchel-net/satchel/testnet"
)

// gatedLister lists its buckets once gate is closed, counting the reads.
type gatedLister struct {
	gate    chan struct{}
	buckets []chain.StorageBucket
	mu      sync.Mutex
	reads   int
}

func (g *gatedLister) StorageBuckets(ctx context.Context) ([]chain.StorageBucket, error) {
	g.mu.Lock()
	g.reads++
	g.mu.Unlock()
	select {
	case <-g.gate:
		return g.buckets, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gatedLister) readCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads
}

// Priority answers at once while the chain read it asked for
// hangs (the DHT asks under its provider manager's lock), asks for one read
// however many records arrive meanwhile, and names the operator once the
// read is done.
func TestRecordPriorityNeverWaits(t *testing.T) {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := peer.IDFromPrivateKey(k)
	w := chain.WorkerID(1)
	g := &gatedLister{gate: make(chan struct{}), buckets: []chain.StorageBucket{{ID: 1, OperatorStatus: chain.OperatorActive,
		Operator: &w, Metadata: &chain.StorageOperatorMetadata{PeerID: op.String()}}}}
	r := operators.NewPriority(&operators.Set{}, g, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	if r.Is(op) {
		t.Fatal("priority before any read of the chain")
	}
	testnet.Wait(t, "the read asked for", func() bool { return g.readCount() == 1 })
	for range 1000 {
		if r.Is(op) {
			t.Fatal("priority while the first read hangs")
		}
	}
	close(g.gate)
	testnet.Wait(t, "the operator named", func() bool { return r.Is(op) })
	if n := g.readCount(); n != 1 {
		t.Fatalf("%d chain reads for the records that arrived during one; want 1", n)
	}
	if r.Is(peer.ID("stranger")) {
		t.Fatal("a peer that operates nothing named")
	}
}
