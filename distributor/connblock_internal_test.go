package distributor

import (
	"fmt"
	"net/http"
	"testing"
)

// hogNetwork fills the /32 2001:db8::/32 (through sixListener, with
// perClient 1) with clientTierShare idle connections from each of
// clientTierShare /48s: the whole /32's bound, one customer's.
func hogNetwork(t *testing.T) *limitedServer {
	t.Helper()
	ls := newSixServer(t)
	for site := 1; site <= clientTierShare; site++ {
		for client := 1; client <= clientTierShare; client++ {
			served(t, ls, fmt.Sprintf("127.0.%d.%d", site, client))
		}
	}
	waitFor(t, "the hog's connections idle", func() bool { return ls.idle() == clientTierShare*clientTierShare })
	return ls
}

// One customer parking idle keep-alive connections at the bound of its
// /32 locks nobody else of the /32 out: a client of a fresh /48, and a
// second /64 of its /48, are each served in place of an idle connection of
// the hog's heavier /48s, and keep their connections while the /32 holds
// its bound; the hog, taking a fresh /64 of one of its full /48s, is
// refused (its /64s hold as many as each other).
func TestConnLimiterIdleHogYieldsNetwork(t *testing.T) {
	ls := hogNetwork(t)
	honest := served(t, ls, "127.0.200.1") // 2001:db8:c8:1::1, a fresh /48 of the hog's /32
	second := served(t, ls, "127.0.200.2") // another /64 of that /48
	if n := value(ls.m.idleClosed); n != 2 {
		t.Fatalf("idle connections closed for the newcomers: %v, want 2", n)
	}
	if n := ls.open(); n != clientTierShare*clientTierShare {
		t.Fatalf("the /32 holds %d connections, want its bound %d", n, clientTierShare*clientTierShare)
	}
	refused(t, ls, fmt.Sprintf("127.0.%d.%d", clientTierShare, clientTierShare+1), "a fresh /64 of the hog's full /48")
	for _, c := range []*rawConn{honest, second} {
		if resp, _ := c.get(t, "/ok"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a newcomer's connection after the hog's retry: %d", resp.StatusCode)
		}
	}
}

// A full /32 whose connections are all busy with requests refuses a
// newcomer: only a silent or idle connection is closed for room, never
// one answering a request.
func TestConnLimiterBusyNetworkRefuses(t *testing.T) {
	ls := newSixServer(t)
	for site := 1; site <= clientTierShare; site++ {
		for client := 1; client <= clientTierShare; client++ {
			dialFrom(t, fmt.Sprintf("127.0.%d.%d", site, client), ls.addr).send(t, "/wait")
			ls.entered(t)
		}
	}
	refused(t, ls, "127.0.200.1", "a fresh /48 of a /32 busy to its bound")
	if n := value(ls.m.idleClosed); n != 0 {
		t.Fatalf("connections closed for room: %v, want none", n)
	}
}
