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

// busyEnv is a provider (host 0) whose memory budgets are limits, serving
// eight 1 MiB blocks with the handler options opts, among n hosts.
func busyEnv(t *testing.T, n int, limits p2p.MemoryLimits, opts ...fetch.Option) (*testnet.Network, *prometheus.Registry, []cid.Cid) {
	t.Helper()
	net := testnet.New(t, n, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 {
			return []p2p.Option{p2p.WithMemoryLimits(limits)}
		}
		return nil
	}))
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts = append([]fetch.Option{fetch.WithMetrics(reg), fetch.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h := fetch.NewHandler(bs.ForProtocols(), &policy{}, opts...)
	h.Register(net.Host(0).Protocol())
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

// waitFetchMemory waits until h's fetch protocol scope holds at least n
// bytes.
func waitFetchMemory(t *testing.T, h *p2p.Host, n int64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for h.ProtocolMemory(p2p.FetchProtocol) < n {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for the fetch protocol to hold %d bytes (holds %d)", n, h.ProtocolMemory(p2p.FetchProtocol))
		case <-tick.C:
		}
	}
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

// pinGETs opens a raw stream from host from to host 0 and sends a GET of
// each block without reading the replies: the provider holds the memory of
// the GETs it reserved (MaxHeldGETs at most) until their replies are
// written, which flow control stops. It returns the replies once the stream
// is read.
func pinGETs(t *testing.T, net *testnet.Network, from int, cids []cid.Cid) (read func() []*pb.FetchReply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := net.Host(from).Libp2p().NewStream(ctx, net.Host(0).ID(), p2p.FetchProtocol)
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
		replies := make([]*pb.FetchReply, 0, len(cids))
		for range cids {
			var r pb.FetchReply
			if err := p2p.ReadMsg(s, &r, fetch.MaxFrame); err != nil {
				t.Fatal(err)
			}
			replies = append(replies, &r)
		}
		return replies
	}
}

// refusals returns the replies of rs that are REFUSED.
func refusals(rs []*pb.FetchReply) []*pb.FetchReply {
	var out []*pb.FetchReply
	for _, r := range rs {
		if r.Status == pb.FetchStatus_FETCH_STATUS_REFUSED {
			out = append(out, r)
		}
	}
	return out
}

// A GET refused because the provider's budget for all peers (here the
// fetch protocol's) is spent, with no stalled stream it may reset, says
// "provider busy" and sets busy: the Client fails it with ErrProviderBusy,
// to read elsewhere. One refused for the reader's own budget (here its
// stream's) says to retry with fewer requests in flight, without busy.
func TestFetchBudgetRefusalNamesScope(t *testing.T) {
	held := int64(fetch.MaxHeldGETs) * fetch.GetMemory
	t.Run("protocol budget: busy", func(t *testing.T) {
		// Room for one stream's held GETs, and no resetting it.
		net, _, cids := busyEnv(t, 2, p2p.MemoryLimits{Protocol: held + fetch.GetMemory/2}, fetch.WithStallEviction(-1))
		read := pinGETs(t, net, 1, cids)
		waitFetchMemory(t, net.Host(0), held)
		f := fetch.NewClient(net.Host(1).Libp2p())
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := f.GetBlock(ctx, net.Host(0).ID(), cids[0])
		if !errors.Is(err, fetch.ErrProviderBusy) || !errors.Is(err, fetch.ErrRefused) {
			t.Fatalf("GetBlock while the protocol's budget is spent: %v, want ErrProviderBusy", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "provider busy") || !strings.Contains(msg, "try another provider") {
			t.Fatalf("refusal %q, want 'provider busy; try another provider'", msg)
		}
		// The pinning stream's own GETs waited for its held ones: none
		// refused, all served once it reads.
		if refused := refusals(read()); len(refused) != 0 {
			t.Fatalf("%d GETs of the pinning stream refused (%s); want them to wait", len(refused), refused[0].Reason)
		}
	})
	t.Run("stream budget: not busy", func(t *testing.T) {
		// Room for one GET per stream: the stream's second is refused.
		net, reg, cids := busyEnv(t, 2, p2p.MemoryLimits{Stream: fetch.GetMemory + fetch.GetMemory/2})
		read := pinGETs(t, net, 1, cids)
		refusedGETs(t, reg, len(cids)-1) // one GET holds the stream's budget
		f := fetch.NewClient(net.Host(1).Libp2p())
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := f.GetBlock(ctx, net.Host(0).ID(), cids[0]); err != nil {
			t.Fatalf("GetBlock on a stream of its own: %v", err)
		}
		refused := refusals(read())
		if len(refused) != len(cids)-1 {
			t.Fatalf("%d GETs refused, want %d", len(refused), len(cids)-1)
		}
		for _, r := range refused {
			if r.Busy || !strings.Contains(r.Reason, "fewer requests in flight") {
				t.Fatalf("refusal busy=%v %q, want not busy and 'fewer requests in flight'", r.Busy, r.Reason)
			}
		}
	})
}
