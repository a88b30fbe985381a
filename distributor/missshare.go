package distributor

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/satchel-net/satchel/internal/keyedsem"
	"github.com/satchel-net/satchel/p2p"
)

// MissClientShare is the share of the --max-misses slots the answers of one
// client (an IPv4 address or an IPv6 /64, as the connection limits count
// them), and of one IPv6 /48 and one /32, may hold at once:
// 1/MissClientShare of them, at least one. A slot an answer holds is one
// of its client's share, and of its /48's and /32's, until it gives it
// back (parks or ends): otherwise one client, reading as many uncached
// objects as its connections allow just fast enough, would hold every slot
// and keep the others' misses waiting; and a host given a /48 (65,536
// /64s), or a network's /48s, would do as much from fresh /64s or /48s.
// With no bound on connections per client (behind a reverse proxy, where
// every client has the proxy's address) there is none on its misses.
const MissClientShare = 4

// missShares are the shares of the miss slots of the clients and of the
// wider blocks they are in (clientBlocks' tiers): a semaphore per block of
// each tier, its entry kept while an answer holds or awaits a share. A
// share is taken narrowest tier first and given back widest first, so
// waiters never hold one another's shares in a cycle.
type missShares struct {
	tiers [clientTiers]*keyedsem.Sem[netip.Prefix]
}

// newMissShares returns the shares: none (no bound) without a bound on a
// client's connections.
func newMissShares(maxMisses, maxConnsPerClient int) *missShares {
	per := 0
	if maxConnsPerClient > 0 {
		per = max(1, maxMisses/MissClientShare)
	}
	s := &missShares{}
	for t := range s.tiers {
		s.tiers[t] = keyedsem.New[netip.Prefix](per, 0)
	}
	return s
}

// blocks returns the blocks of each tier client (clientPrefix's) is in.
func (s *missShares) blocks(client netip.Prefix) clientBlocks {
	site, network := p2p.WideBlocks(client)
	return clientBlocks{tierClient: client, tierSite: site, tierNet: network}
}

// TryAcquire takes a share of client and of each of its wider blocks if
// all are free, and reports whether it did (taking none when not).
func (s *missShares) TryAcquire(client netip.Prefix) bool {
	bs := s.blocks(client)
	for t, b := range bs {
		if !b.IsValid() && t > tierClient {
			continue
		}
		if !s.tiers[t].TryAcquire(b) {
			s.release(bs, t)
			return false
		}
	}
	return true
}

// Acquire takes a share of client and of each of its wider blocks,
// waiting while they are held; when ctx ends first it takes none and
// returns the error.
func (s *missShares) Acquire(ctx context.Context, client netip.Prefix) error {
	bs := s.blocks(client)
	for t, b := range bs {
		if !b.IsValid() && t > tierClient {
			continue
		}
		if err := s.tiers[t].Acquire(ctx, b); err != nil {
			s.release(bs, t)
			return err
		}
	}
	return nil
}

// Release gives back the shares one Acquire or TryAcquire took for client.
func (s *missShares) Release(client netip.Prefix) {
	s.release(s.blocks(client), clientTiers)
}

// release gives back the shares of bs's tiers below n, widest first.
func (s *missShares) release(bs clientBlocks, n int) {
	for t := n - 1; t >= 0; t-- {
		if bs[t].IsValid() || t == tierClient {
			s.tiers[t].Release(bs[t])
		}
	}
}

// takeShare takes one of client's shares, waiting (until ctx ends, then
// false) while its answers, or its /48's or /32's, hold all; it counts the
// answers that wait.
func (s *Server) takeShare(ctx context.Context, client netip.Prefix) bool {
	if s.shares.TryAcquire(client) {
		return true
	}
	s.m.missClientWaits.Inc()
	return s.shares.Acquire(ctx, client) == nil
}

// requestClient returns the client r counts against (clientPrefix of its
// remote address; the zero Prefix when it does not parse).
func requestClient(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	return clientPrefix(ap.Addr())
}
