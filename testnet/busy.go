package testnet

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
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
	return p.limitProtocolBudget(ctx, BusyFetchBudget)
}

// limitProtocolBudget restarts p with its fetch and store protocols'
// memory budget (for all peers) at n bytes.
func (p *Provider) limitProtocolBudget(ctx context.Context, n int64) error {
	if err := p.Kill(); err != nil {
		return err
	}
	p.mu.Lock()
	p.hostOpts = append(p.hostOpts, p2p.WithMemoryLimits(p2p.MemoryLimits{Protocol: n}))
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
// the network's client host (ClientHost) it sends fetch.MaxInFlight GETs of
// block c on one stream and reads no reply. p holds the memory of
// fetch.MaxHeldGETs of them (the reply being written, which flow control
// stops, and the next) — with p's fetch budget at BusyFetchBudget
// (LimitFetchBudget) all of it — and the stream's other GETs wait unread.
// Every GET of another reader is refused busy until release, which resets
// the stream, or until the holder's write has been blocked
// fetch.DefaultStallEviction, when such a GET resets the holder instead. c
// must be a block p serves of at least 1 MiB (a reply that does not fit
// the stream's flow-control window). It returns once p holds that memory.
func (p *Provider) HoldFetchBudget(ctx context.Context, c cid.Cid) (release func(), err error) {
	if !p.Running() {
		return nil, fmt.Errorf("testnet: provider %d is not running", p.Index)
	}
	h, err := p.net.ClientHost(ctx)
	if err != nil {
		return nil, err
	}
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
		// The stream holds the memory of fetch.MaxHeldGETs GETs, a little
		// over 2 MiB each, which fill the budget; its other GETs wait.
		err = ctxsleep.Poll(ctx, func() bool {
			return p.Host() != nil && p.Host().ProtocolMemory(p2p.FetchProtocol) >= fetch.MaxHeldGETs*fetch.MaxBlockSize
		})
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("testnet: hold provider %d's fetch budget: %w", p.Index, err)
	}
	return release, nil
}

// BusyStoreBudget is a memory budget for a provider's store protocol
// (p2p.MemoryLimits.Protocol) that holds an upload of 1 MiB chunks with
// every chunk exchange of a store stream in flight, but not that and
// HoldStoreBudget's exchanges together.
const BusyStoreBudget = 24 << 20

// holdChunk is the chunk size of the object HoldStoreBudget asks to store.
const holdChunk = 1 << 20

// holds numbers the objects HoldStoreBudget registers, so each is new.
var holds atomic.Uint32

// LimitStoreBudget restarts provider p (same identity and store, a new
// port) with the memory budgets of its host at BusyStoreBudget for its
// fetch and store protocols, the others at their defaults, for the rest
// of the network's life, so HoldStoreBudget can make it busy. Uploads of
// chunks up to 1 MiB still fit while it is not held.
func (p *Provider) LimitStoreBudget(ctx context.Context) error {
	return p.limitProtocolBudget(ctx, BusyStoreBudget)
}

// RefusedStores returns how many store exchanges the running provider
// refused for its memory budget (busy or over an uploader's own budget)
// since it started; 0 when stopped.
func (p *Provider) RefusedStores() float64 {
	reg := p.Registry()
	if reg == nil {
		return 0
	}
	n, _ := metricsutil.Counter(reg, "satchel_provider_store_over_budget_total")
	return n
}

// HoldStoreBudget makes provider p busy for every uploader, for real: it
// registers an object of 1 MiB chunks in the network's bag (signed by the
// member) and, from the network's client host (ClientHost), asks p on one
// store stream to store each of its chunks, with its proof, and sends no
// data, so p keeps the memory reserved for every chunk it agreed to until
// release, which resets the stream (or until p gives the exchanges up
// after store.IdleTimeout). With p's store budget at BusyStoreBudget
// (LimitStoreBudget) p refuses the chunks it cannot reserve busy, and so
// every chunk of 1 MiB or more of another uploader until release. It
// returns once p refused one of its chunks busy.
func (p *Provider) HoldStoreBudget(ctx context.Context) (release func(), err error) {
	if !p.Running() {
		return nil, fmt.Errorf("testnet: provider %d is not running", p.Index)
	}
	n := int(BusyStoreBudget/holdChunk) + 8
	data := make([]byte, n*holdChunk)
	rnd := rand.NewChaCha8([32]byte{byte(p.Index), byte(holds.Add(1))})
	_, _ = rnd.Read(data)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(holdChunk))
	if err != nil {
		return nil, err
	}
	obj, err := p.net.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		return nil, err
	}
	h, err := p.net.ClientHost(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.Libp2p().Connect(ctx, p.AddrInfo()); err != nil {
		return nil, fmt.Errorf("testnet: connect to provider %d: %w", p.Index, err)
	}
	reqs := make([]*storepb.StoreRequest, len(res.Chunks))
	for i, c := range res.Chunks {
		proof, err := res.Proof(i)
		if err != nil {
			return nil, err
		}
		reqs[i] = &storepb.StoreRequest{Id: uint64(i + 1), Body: &storepb.StoreRequest_Request{Request: &storepb.StoreChunkRequest{
			BagId: string(obj.Bag), ObjectId: uint64(obj.ID), Cid: c.CID.Bytes(), Length: uint64(c.Size), Index: uint64(i),
			Proof: proof.Blocks, ExpiryUnix: time.Now().Add(time.Hour).Unix(),
		}}}
	}
	// The provider may not know of the object for a block: ask again until
	// it agrees.
	for {
		release, refused, err := p.holdStore(ctx, h, reqs)
		if err != nil {
			return nil, fmt.Errorf("testnet: hold provider %d's store budget: %w", p.Index, err)
		}
		if refused == "" {
			return release, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("testnet: hold provider %d's store budget: %w (last refusal: %s)", p.Index, ctx.Err(), refused)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// holdStore sends reqs on a new store stream from h to p and reads their
// replies. When p refused one busy and agreed to every other, the stream
// holds p's budget until release. When p refused one otherwise (refused
// says how), the stream is reset and HoldStoreBudget tries again.
func (p *Provider) holdStore(ctx context.Context, h *p2p.Host, reqs []*storepb.StoreRequest) (release func(), refused string, err error) {
	s, err := h.Libp2p().NewStream(ctx, p.AddrInfo().ID, p2p.StoreProtocol)
	if err != nil {
		return nil, "", fmt.Errorf("store stream: %w", err)
	}
	release = func() { _ = s.Reset() }
	_ = s.SetDeadline(time.Now().Add(store.IdleTimeout))
	fw := p2p.NewFrameWriter(s)
	for _, r := range reqs {
		if err = fw.WriteMsg(r); err != nil {
			break
		}
	}
	if err == nil {
		err = fw.Flush()
	}
	fr := p2p.NewFrameReader(s, store.MaxFrame)
	agreed, busy := 0, false
	for range reqs {
		if err != nil {
			break
		}
		var r storepb.StoreReply
		if err = fr.ReadMsg(&r); err != nil {
			break
		}
		switch {
		case r.Status == storepb.Status_STATUS_AGREED:
			agreed++
		case r.Status == storepb.Status_STATUS_REFUSED && r.Busy:
			busy = true
		default:
			refused = fmt.Sprintf("%v %s", r.Status, r.Reason)
		}
	}
	if err == nil && refused == "" && !busy {
		err = fmt.Errorf("provider agreed to all %d chunks of 1 MiB: its store budget is not limited (LimitStoreBudget)", agreed)
	}
	if err != nil || refused != "" {
		release()
		return nil, refused, err
	}
	return release, "", nil
}
