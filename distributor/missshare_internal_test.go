package distributor

import (
	"context"
	"net/netip"
	"testing"
)

// A client's share of the miss slots is shared by its /48 and its /32 too,
// so fresh /64s or /48s buy no more; a client of another /32, and each
// IPv4 client reached through NAT64, has a share of its own; a share
// refused takes nothing.
func TestMissSharesByTier(t *testing.T) {
	s := newMissShares(MissClientShare, 1) // one slot per block
	client := func(ip string) netip.Prefix { return clientPrefix(netip.MustParseAddr(ip)) }
	hog := client("2001:db8:1:1::1")
	if !s.TryAcquire(hog) {
		t.Fatal("a first client's share refused")
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:2:1::1"} { // a fresh /64; a fresh /48
		if s.TryAcquire(client(ip)) {
			t.Fatalf("%s took a share beside its /32's holder", ip)
		}
	}
	for _, ip := range []string{"2001:db9:1:1::1", "64:ff9b::c000:201", "64:ff9b::c633:6401"} {
		if !s.TryAcquire(client(ip)) {
			t.Fatalf("%s refused a share of its own", ip)
		}
	}
	s.Release(hog)
	next := client("2001:db8:2:1::1")
	if err := s.Acquire(context.Background(), next); err != nil {
		t.Fatalf("a client of the /32 once its share is free: %v", err)
	}
	for t_, sem := range s.tiers {
		if n := sem.Users(blocksOfClient(next)[t_]); n != 1 && blocksOfClient(next)[t_].IsValid() {
			t.Errorf("tier %d of %v: %d users, want 1 (a refused share left nothing held)", t_, next, n)
		}
	}
}

// blocksOfClient is clientBlocksOf for a client's prefix.
func blocksOfClient(c netip.Prefix) clientBlocks { return clientBlocksOf(c.Addr()) }
