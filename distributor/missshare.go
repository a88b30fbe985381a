package distributor

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/satchel-net/satchel/internal/keyedsem"
)

// MissClientShare is the share of the --max-misses slots the answers of one
// client (an IPv4 address or an IPv6 /64, as the connection limits count
// them) may hold at once: 1/MissClientShare of them, at least one. A slot
// an answer holds is one of its client's share until it gives it back
// (parks or ends): otherwise one client, reading as many uncached objects
// as its connections allow just fast enough, would hold every slot and keep
// the others' misses waiting.
// With no bound on connections per client (behind a reverse proxy, where
// every client has the proxy's address) there is none on its misses.
const MissClientShare = 4

// missShares are the clients' shares of the miss slots: a semaphore per
// client, its entry kept while an answer holds or awaits a share.
type missShares = keyedsem.Sem[netip.Prefix]

// newMissShares returns the shares: none (no bound) without a bound on a
// client's connections.
func newMissShares(maxMisses, maxConnsPerClient int) *missShares {
	per := 0
	if maxConnsPerClient > 0 {
		per = max(1, maxMisses/MissClientShare)
	}
	return keyedsem.New[netip.Prefix](per, 0)
}

// takeShare takes one of client's shares, waiting (until ctx ends, then
// false) while its answers hold all; it counts the answers that wait.
func (s *Server) takeShare(ctx context.Context, client netip.Prefix) bool {
	if s.shares.TryAcquire(client) {
		return true
	}
	s.m.missClientWaits.Inc()
	return s.shares.Acquire(ctx, client) == nil
}

// requestClient returns the client r counts against (clientOf its remote
// address; the zero Prefix when it does not parse).
func requestClient(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	return clientPrefix(ap.Addr())
}
