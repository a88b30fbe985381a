package distributor

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
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
// client with answers holding or awaiting a share, dropped when none does.
type missShares struct {
	per int // slots one client's answers hold at most; 0: no bound

	mu sync.Mutex
	m  map[netip.Prefix]*missShare
}

type missShare struct {
	sem  chan struct{}
	refs int // answers holding or awaiting a token
}

func newMissShares(maxMisses, maxConnsPerClient int) *missShares {
	ms := &missShares{m: map[netip.Prefix]*missShare{}}
	if maxConnsPerClient > 0 {
		ms.per = max(1, maxMisses/MissClientShare)
	}
	return ms
}

// acquire takes one of client's tokens, waiting (until ctx ends, then
// false) while its answers hold all; it calls waiting, when set, as it
// starts to wait.
func (ms *missShares) acquire(ctx context.Context, client netip.Prefix, waiting func()) bool {
	if ms.per == 0 {
		return true
	}
	ms.mu.Lock()
	sh := ms.m[client]
	if sh == nil {
		sh = &missShare{sem: make(chan struct{}, ms.per)}
		ms.m[client] = sh
	}
	sh.refs++
	ms.mu.Unlock()
	select {
	case sh.sem <- struct{}{}:
		return true
	default:
	}
	if waiting != nil {
		waiting()
	}
	select {
	case sh.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		ms.unref(client, sh)
		return false
	}
}

// release gives back a token acquire took for client.
func (ms *missShares) release(client netip.Prefix) {
	if ms.per == 0 {
		return
	}
	ms.mu.Lock()
	sh := ms.m[client]
	ms.mu.Unlock()
	<-sh.sem
	ms.unref(client, sh)
}

func (ms *missShares) unref(client netip.Prefix, sh *missShare) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if sh.refs--; sh.refs == 0 {
		delete(ms.m, client)
	}
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
