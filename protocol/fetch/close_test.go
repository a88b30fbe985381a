package fetch_test

import (
	"context"
	"errors"
	"log/slog"
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
	satnet "github.com/satchel-net/satchel/testnet"
)

// gatedBlocks holds every Get until gate is closed, counting the Gets
// waiting in entered.
type gatedBlocks struct {
	fetch.Blocks
	gate    chan struct{}
	entered atomic.Int64
}

func (b *gatedBlocks) Get(c cid.Cid) ([]byte, error) {
	b.entered.Add(1)
	<-b.gate
	return b.Blocks.Get(c)
}

// gatedEnv is a provider (host 0) serving n 1 MiB blocks through
// gatedBlocks with handler options opts, and a reader (host 1).
func gatedEnv(t *testing.T, n int, opts ...fetch.Option) (*testnet.Network, *gatedBlocks, *prometheus.Registry, []cid.Cid) {
	t.Helper()
	net := testnet.New(t, 2)
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	blocks := &gatedBlocks{Blocks: bs.ForProtocols(), gate: make(chan struct{})}
	reg := prometheus.NewRegistry()
	opts = append([]fetch.Option{fetch.WithMetrics(reg), fetch.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h := fetch.NewHandler(blocks, &policy{}, opts...)
	h.Register(net.Host(0).Protocol())
	t.Cleanup(func() {
		_ = h.Close()
		_ = bs.Close()
	})
	cids := make([]cid.Cid, n)
	for i := range cids {
		data := benchutil.Rand(uint64(900+i), 1<<20)
		cids[i] = chunker.ChunkCID(data)
		if err := bs.Put(cids[i], data); err != nil {
			t.Fatal(err)
		}
	}
	return net, blocks, reg, cids
}

// A Client closed with GETs in flight (an interrupted download, read-ahead
// no longer wanted) closes its stream gracefully: it reads and drops the
// replies still due instead of resetting the stream, so the provider sends
// them all and charges nothing to the reader's abandonment budget. Reset,
// the replies being prepared would be left unsent and charged.
func TestClientCloseChargesNoAbandonment(t *testing.T) {
	const gets = 4
	net, blocks, reg, cids := gatedEnv(t, gets)
	// Time enough for a loaded test machine; the default is CloseDrain.
	f := fetch.NewClient(net.Host(1).Libp2p(), fetch.WithCloseDrain(satnet.WaitTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, gets)
	for _, c := range cids {
		go func() {
			_, err := f.GetBlock(ctx, net.Host(0).ID(), c)
			errs <- err
		}()
	}
	// Every request sent (a GetBlock not yet sent when Close begins fails
	// unsent, and its reply would never come: waiting on the provider's
	// bytes below for all gets would then wait in vain), and the provider
	// preparing the replies it holds memory for.
	satnet.Wait(t, "every GET sent", func() bool { return fetch.CallsDue(f, net.Host(0).ID()) == gets })
	satnet.Wait(t, "the provider preparing replies", func() bool { return blocks.entered.Load() == fetch.MaxHeldGETs })
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	for range gets {
		if err := <-errs; !errors.Is(err, fetch.ErrStreamClosed) {
			t.Fatalf("a GetBlock in flight when Close began: %v, want ErrStreamClosed", err)
		}
	}
	close(blocks.gate) // the replies are ready only now, after Close began
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	sent := float64(gets << 20)
	satnet.Wait(t, "the provider done with the stream", func() bool {
		return counter(t, reg, "satchel_provider_fetch_abandoned_bytes_total") > 0 ||
			counter(t, reg, "satchel_provider_fetch_bytes_out_total") == sent
	})
	if n := counter(t, reg, "satchel_provider_fetch_abandoned_bytes_total"); n != 0 {
		t.Fatalf("closing the Client charged the reader %v abandoned bytes", n)
	}
}

// A Client closed while a provider sits on its GETs waits for their
// replies CloseDrain at most, then resets the stream: Close returns, and
// the provider charges what it then could not send.
func TestClientCloseResetsUndrained(t *testing.T) {
	net, blocks, reg, cids := gatedEnv(t, 1)
	f := fetch.NewClient(net.Host(1).Libp2p()) // CloseDrain
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		_, err := f.GetBlock(ctx, net.Host(0).ID(), cids[0])
		errs <- err
	}()
	satnet.Wait(t, "the provider preparing the reply", func() bool { return blocks.entered.Load() == 1 })
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case <-closed:
	case <-time.After(fetch.IdleTimeout * 2 / 3): // far beyond CloseDrain, short of the provider's idle close
		t.Fatal("Close still waiting for a provider that does not answer")
	}
	if err := <-errs; !errors.Is(err, fetch.ErrStreamClosed) {
		t.Fatalf("the GetBlock in flight: %v, want ErrStreamClosed", err)
	}
	close(blocks.gate)
	satnet.Wait(t, "the undrained reply charged", func() bool {
		return counter(t, reg, "satchel_provider_fetch_abandoned_bytes_total") == 1<<20
	})
}
