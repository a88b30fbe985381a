package fetch_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// busyEnv is a provider (host 1) whose memory budgets are limits, serving
// eight 1 MiB blocks, and a reader (host 0).
func busyEnv(t *testing.T, limits p2p.MemoryLimits) (*testnet.Network, *prometheus.Registry, []cid.Cid) {
	t.Helper()
	net := testnet.New(t, 2, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 1 {
			return []p2p.Option{p2p.WithMemoryLimits(limits)}
		}
		return nil
	}))
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := fetch.NewHandler(bs.ForProtocols(), &policy{}, fetch.WithMetrics(reg), fetch.WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(net.Host(1).Protocol())
	t.Cleanup(func() {
		_ = h.Close()
		_ = bs.Close()
	})
	cids := make([]cid.Cid, fetch.MaxInFlight)
	for i := range cids {
		data := benchutil.Rand(uint64(300+i), 1<<20)
		cids[i] = chunker.ChunkCID(data)
		if err := bs.Put(cids[i], data); err != nil {
			t.Fatal(err)
		}
	}
	return net, reg, cids
}

// refusedGETs waits until the provider has refused n GETs.
func refusedGETs(t *testing.T, reg *prometheus.Registry, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for counter(t, reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "refused") < float64(n) {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %d GETs refused", n)
		case <-tick.C:
		}
	}
}

// pinGETs opens a raw stream from host 0 to host 1 and sends a GET of
// each block without reading the replies: the provider holds the memory
// of each GET it reserved until its reply is written, which flow control
// stops. It returns the refused replies once the stream is read.
func pinGETs(t *testing.T, net *testnet.Network, cids []cid.Cid) (read func() []*pb.FetchReply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := net.Host(0).Libp2p().NewStream(ctx, net.Host(1).ID(), p2p.FetchProtocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	fw := p2p.NewFrameWriter(s)
	for i, c := range cids {
		if err := fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []*pb.FetchReply {
		var refused []*pb.FetchReply
		for range cids {
			var r pb.FetchReply
			if err := p2p.ReadMsg(s, &r, fetch.MaxFrame); err != nil {
				t.Fatal(err)
			}
			if r.Status == pb.FetchStatus_FETCH_STATUS_REFUSED {
				refused = append(refused, &r)
			}
		}
		return refused
	}
}

// A GET refused because the provider's budget for all peers (here the
// fetch protocol's) is spent says "provider busy" and sets busy: the
// Client fails it with ErrProviderBusy, to read elsewhere. One refused for
// the reader's own budget (here its stream's) says to retry with fewer
// requests in flight, without busy.
func TestFetchBudgetRefusalNamesScope(t *testing.T) {
	const twoGETs = 5 << 20 // each GET reserves a little over 2 MiB
	t.Run("protocol budget: busy", func(t *testing.T) {
		net, reg, cids := busyEnv(t, p2p.MemoryLimits{Protocol: twoGETs})
		read := pinGETs(t, net, cids)
		refusedGETs(t, reg, len(cids)-2) // two GETs hold the budget
		f := fetch.NewClient(net.Host(0).Libp2p())
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := f.GetBlock(ctx, net.Host(1).ID(), cids[0])
		if !errors.Is(err, fetch.ErrProviderBusy) || !errors.Is(err, fetch.ErrRefused) {
			t.Fatalf("GetBlock while the protocol's budget is spent: %v, want ErrProviderBusy", err)
		}
		refused := read()
		if len(refused) == 0 {
			t.Fatal("no GET refused")
		}
		for _, r := range refused {
			if !r.Busy || !strings.Contains(r.Reason, "provider busy") || !strings.Contains(r.Reason, "try another provider") {
				t.Fatalf("refusal busy=%v %q, want busy and 'provider busy; try another provider'", r.Busy, r.Reason)
			}
		}
	})
	t.Run("stream budget: not busy", func(t *testing.T) {
		net, reg, cids := busyEnv(t, p2p.MemoryLimits{Stream: twoGETs})
		read := pinGETs(t, net, cids)
		refusedGETs(t, reg, len(cids)-2) // two GETs hold the stream's budget
		f := fetch.NewClient(net.Host(0).Libp2p())
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := f.GetBlock(ctx, net.Host(1).ID(), cids[0]); err != nil {
			t.Fatalf("GetBlock on a stream of its own: %v", err)
		}
		refused := read()
		if len(refused) == 0 {
			t.Fatal("no GET refused")
		}
		for _, r := range refused {
			if r.Busy || !strings.Contains(r.Reason, "fewer requests in flight") {
				t.Fatalf("refusal busy=%v %q, want not busy and 'fewer requests in flight'", r.Busy, r.Reason)
			}
		}
	})
}
