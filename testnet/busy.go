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
// (p2p.MemoryLimits.Protocol) that holds two GETs: HoldFetchBudget can
// spend it, making the provider busy.
const BusyFetchBudget = 5 << 20

// LimitFetchBudget restarts provider p (same identity and store, a new
// port) with the memory budgets of its host at BusyFetchBudget for its
// fetch and store protocols, the others at their defaults, for the rest
// of the network's life. Upload to p first: an upload's chunks would not
// fit.
func (p *Provider) LimitFetchBudget(ctx context.Context) error {
	if err := p.Kill(); err != nil {
		return err
	}
	p.mu.Lock()
	p.hostOpts = append(p.hostOpts, p2p.WithMemoryLimits(p2p.MemoryLimits{Protocol: BusyFetchBudget}))
	p.mu.Unlock()
	return p.Restart(ctx)
}

// RefusedGETs returns how many fetch GETs the running provider refused
// (busy or over a reader's own budget) since it started; 0 when stopped.
func (p *Provider) RefusedGETs() float64 {
	reg := p.Registry()
	if reg == nil {
		return 0
	}
	n, _ := metricsutil.Counter(reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "refused")
	return n
}

// HoldFetchBudget makes provider p busy for every reader, for real: from
// the network's client host (ClientHost) it sends fetch.MaxInFlight GETs of block c on one stream and reads
// no reply, so p keeps the memory of the GETs it reserved until their
// replies are written, which flow control stops. With p's fetch budget at
// BusyFetchBudget (LimitFetchBudget) the GETs it cannot reserve are refused busy, and so is
// every GET of another reader until release, which resets the stream. c
// must be a block p serves of at least 1 MiB (a reply that does not fit
// the stream's flow-control window). It returns once p has refused the
// GETs beyond its budget. p resets the stream after fetch.IdleTimeout.
func (p *Provider) HoldFetchBudget(ctx context.Context, c cid.Cid) (release func(), err error) {
	if !p.Running() {
		return nil, fmt.Errorf("testnet: provider %d is not running", p.Index)
	}
	h, err := p.net.ClientHost(ctx)
	if err != nil {
		return nil, err
	}
	before := p.RefusedGETs()
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
		err = poll(ctx, func() bool { return p.RefusedGETs() >= before+fetch.MaxInFlight-2 })
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("testnet: hold provider %d's fetch budget: %w", p.Index, err)
	}
	return release, nil
}
