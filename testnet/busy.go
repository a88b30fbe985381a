package testnet

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// BusyFetchBudget is a memory budget for a provider's fetch protocol
// (p2p.MemoryLimits.Protocol, through Config.HostOptions) that holds two
// GETs: HoldFetchBudget can spend it, making the provider busy.
const BusyFetchBudget = 5 << 20

// HoldFetchBudget makes provider p busy for every reader, for real: from
// host h it sends fetch.MaxInFlight GETs of block c on one stream and reads
// no reply, so p keeps the memory of the GETs it reserved until their
// replies are written, which flow control stops. With p's fetch budget at
// BusyFetchBudget the GETs it cannot reserve are refused busy, and so is
// every GET of another reader until release, which resets the stream. c
// must be a block p serves of at least 1 MiB (a reply that does not fit
// the stream's flow-control window). It returns once p has refused the
// GETs beyond its budget. p resets the stream after fetch.IdleTimeout.
func (p *Provider) HoldFetchBudget(ctx context.Context, h *p2p.Host, c cid.Cid) (release func(), err error) {
	reg := p.Registry()
	if reg == nil {
		return nil, fmt.Errorf("testnet: provider %d is not running", p.Index)
	}
	refused := func() float64 {
		n, _ := metricsutil.Counter(reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "refused")
		return n
	}
	before := refused()
	if err := h.Libp2p().Connect(ctx, p.AddrInfo()); err != nil {
		return nil, fmt.Errorf("testnet: connect to provider %d: %w", p.Index, err)
	}
	s, err := h.Libp2p().NewStream(ctx, p.AddrInfo().ID, p2p.FetchProtocol)
	if err != nil {
		return nil, fmt.Errorf("testnet: fetch stream to provider %d: %w", p.Index, err)
	}
	release = func() { _ = s.Reset() }
	_ = s.SetDeadline(time.Now().Add(fetch.IdleTimeout))
	fw := p2p.NewFrameWriter(s)
	for i := range fetch.MaxInFlight {
		err = fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}})
		if err != nil {
			break
		}
	}
	if err == nil {
		err = fw.Flush()
	}
	if err == nil {
		// Each GET reserves a little over 2 MiB: two fit the budget.
		err = poll(ctx, func() bool { return refused() >= before+fetch.MaxInFlight-2 })
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("testnet: hold provider %d's fetch budget: %w", p.Index, err)
	}
	return release, nil
}
