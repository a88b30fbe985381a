package fetch

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer's abandonment bucket: a peer never charged is neither spent nor
// owing; charges go down to minus the burst and no further; the bucket is
// spent at zero and owing while more than half a 4 MiB burst (or
// MaxGetBytes of a larger one) short of full.
func TestAbandonBudgetBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1<<20, 4<<20, [tiers]int{1 << 10, 0}) // addresses out of the way
	a.now = func() time.Time { return now }
	p := origin{peer: "reader"}
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("a new peer: spent %v, owing %v", spent, owing)
	}
	a.charge(p, 2<<20)
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("2 MiB of 4 abandoned: spent %v, owing %v; want neither", spent, owing)
	}
	a.charge(p, 1)
	if spent, owing := a.state(p); spent || !owing {
		t.Fatalf("2 MiB and a byte of 4 abandoned: spent %v, owing %v; want owing only", spent, owing)
	}
	a.charge(p, 64<<20) // down to -4 MiB, no further
	if spent, _ := a.state(p); !spent {
		t.Fatal("not spent past its burst")
	}
	now = now.Add(4*time.Second + time.Millisecond) // -4 MiB + 4 MiB
	if spent, owing := a.state(p); spent || !owing {
		t.Fatalf("refilled to zero and a little: spent %v, owing %v; want owing only (the floor is minus the burst)", spent, owing)
	}
	now = now.Add(2 * time.Second)
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("refilled to half: spent %v, owing %v", spent, owing)
	}
	big := newAbandonBudget(1, 64<<20, [tiers]int{1, 0})
	big.now = a.now
	big.charge(p, MaxGetBytes)
	if _, owing := big.state(p); owing {
		t.Fatal("owing after abandoning MaxGetBytes of a 64 MiB burst")
	}
	big.charge(p, 1)
	if _, owing := big.state(p); !owing {
		t.Fatal("not owing after abandoning more than MaxGetBytes of a 64 MiB burst")
	}
}

// The record of peers stays bounded: while it is full of peers still
// refilling, a newcomer's charge goes to its overflow bucket, which the
// peers not in the record whose keys hash to the same slot share, so it
// still binds (the newcomer, and those peers, are refused once it is
// spent) while the peers of the other slots are served; once buckets
// have refilled they are forgotten and a newcomer gets one of its own.
func TestAbandonBudgetOverflow(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1<<20, 4<<20, [tiers]int{1 << 10, 0})
	a.now = func() time.Time { return now }
	for i := range maxBudgetPeers {
		a.charge(origin{peer: peer.ID(fmt.Sprint("peer", i))}, 1<<20)
	}
	newcomer := origin{peer: "newcomer"}
	a.charge(newcomer, 8<<20)
	if spent, _ := a.state(newcomer); !spent {
		t.Fatal("a newcomer's charge dropped while the record is full of peers refilling")
	}
	var other origin // a peer never charged, in another slot
	for i := 0; ; i++ {
		o := origin{peer: peer.ID(fmt.Sprint("other", i))}
		spent, _ := a.state(o)
		if a.peers.slot(o.peer) == a.peers.slot(newcomer.peer) {
			if !spent {
				t.Fatalf("peer %s, beyond the record in the newcomer's slot, not bound by its overflow bucket", o.peer)
			}
			continue
		}
		if spent {
			t.Fatalf("peer %s, never charged, refused: the spent overflow bucket is another slot's", o.peer)
		}
		other = o
		break
	}
	if spent, owing := a.state(origin{peer: "peer0"}); spent || owing {
		t.Fatalf("a recorded peer within its budget: spent %v, owing %v", spent, owing)
	}
	if n := len(a.peers.m); n != maxBudgetPeers {
		t.Fatalf("%d buckets recorded; want the record's bound, %d", n, maxBudgetPeers)
	}
	now = now.Add(time.Minute) // every bucket full again
	a.charge(newcomer, 8<<20)
	if spent, _ := a.state(newcomer); !spent {
		t.Fatal("a newcomer's charge dropped once the buckets refilled")
	}
	if spent, _ := a.state(other); spent {
		t.Fatal("a peer never charged refused once the newcomer has a bucket of its own")
	}
	if n := len(a.peers.m); n != 1 {
		t.Fatalf("%d buckets recorded; want the newcomer's alone", n)
	}
}

// A record full of peers charged a byte each, and one burst beyond it,
// refuse no newcomer but those that share the charger's overflow bucket:
// every newcomer was refused (for good with a budget that never refilled).
func TestAbandonBudgetOverflowSparesNewcomers(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1, 1<<20, [tiers]int{1 << 10, 0})
	a.now = func() time.Time { return now }
	for i := range maxBudgetPeers {
		a.charge(origin{peer: peer.ID(fmt.Sprint("peer", i))}, 1)
	}
	a.charge(origin{peer: "spender"}, 2<<20)
	refused := 0
	const newcomers = 1024
	for i := range newcomers {
		p := peer.ID(fmt.Sprint("newcomer", i))
		spent, _ := a.state(origin{peer: p})
		if shared := a.peers.slot(p) == a.peers.slot("spender"); spent != shared {
			t.Fatalf("newcomer %d refused %v, sharing the spender's overflow bucket %v", i, spent, shared)
		}
		if spent {
			refused++
		}
	}
	if refused == newcomers {
		t.Fatalf("all %d newcomers refused after one peer spent a burst beyond the record", newcomers)
	}
}

// WithAbandonBudget with a rate of 0 keeps the defaults: a budget that
// never refilled refused a peer for good.
func TestAbandonBudgetRejectsNoRefill(t *testing.T) {
	var cfg config
	WithAbandonBudget(0, 1<<20)(&cfg)
	WithAbandonBudget(-1, 1<<20)(&cfg)
	now := time.Unix(1000, 0)
	a := newAbandonBudget(cfg.abandonRate, cfg.abandonBurst, [tiers]int{0, 0})
	a.now = func() time.Time { return now }
	p := origin{peer: "reader"}
	a.charge(p, 64<<20)
	if spent, _ := a.state(p); !spent {
		t.Fatal("not spent")
	}
	now = now.Add(time.Minute)
	if spent, _ := a.state(p); spent {
		t.Fatal("still spent a minute later: the budget never refills")
	}
	WithAbandonBudget(1, 1<<20)(&cfg)
	if cfg.abandonRate != 1 || cfg.abandonBurst != 1<<20 {
		t.Fatalf("a positive rate and burst not taken: %d, %d", cfg.abandonRate, cfg.abandonBurst)
	}
}

// at is p's origin at the address block b.
func at(p peer.ID, b string) origin {
	return origin{peer: p, blocks: blocksOf(netip.MustParsePrefix(b))}
}

// The /64s of one IPv6 /48 share its budget, n times an address's: a host
// given a /48 (65,536 /64s) that takes a fresh /64 once each has spent its
// budget is refused once the /48's is spent, and a peer in another /48
// is not. IPv4 addresses have no /48's: a few spent ones leave a fresh
// one of their /24 served.
func TestAbandonBudgetPerWidePrefix(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1<<20, 4<<20, [tiers]int{1, 2})
	a.now = func() time.Time { return now }
	for i, b := range []string{"2001:db8:1:1::/64", "2001:db8:1:ff00::/64"} {
		o := at(peer.ID(fmt.Sprint("id", i)), b)
		if spent, _ := a.state(o); spent {
			t.Fatalf("/64 %d refused before its /48's 8 MiB were spent", i)
		}
		a.charge(o, 4<<20)
	}
	if spent, owing := a.state(at("fresh", "2001:db8:1:2::/64")); !spent || owing {
		t.Fatalf("a fresh peer in a fresh /64 of a /48 whose budget is spent: spent %v, owing %v; want spent only", spent, owing)
	}
	if spent, _ := a.state(at("fresh", "2001:db8:2:2::/64")); spent {
		t.Fatal("a peer in another /48 refused")
	}
	for i := range 4 {
		a.charge(at(peer.ID(fmt.Sprint("v4-", i)), fmt.Sprintf("203.0.113.%d/32", i)), 4<<20)
	}
	if spent, _ := a.state(at("fresh", "203.0.113.9/32")); spent {
		t.Fatal("a peer at a fresh IPv4 address refused beside spent ones")
	}
}

// Peers at one address share its budget, n times a peer's: peer IDs taken
// afresh each with a full budget of its own spend the address's, and then
// every peer at that address is refused, a peer at another is not. An
// IPv6 address's /64 is one address.
func TestAbandonBudgetPerAddress(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1<<20, 4<<20, [tiers]int{3, 1 << 10})
	a.now = func() time.Time { return now }
	home := "203.0.113.7/32"
	for i := range 3 {
		o := at(peer.ID(fmt.Sprint("id", i)), home)
		if spent, _ := a.state(o); spent {
			t.Fatalf("peer ID %d refused before its address's 12 MiB were spent", i)
		}
		a.charge(o, 4<<20) // its own budget spent
	}
	fresh := at("fresh", home)
	if spent, owing := a.state(fresh); !spent || owing {
		t.Fatalf("a fresh peer ID at an address whose budget is spent: spent %v, owing %v; want spent only", spent, owing)
	}
	if spent, _ := a.state(at("fresh", "203.0.113.8/32")); spent {
		t.Fatal("a peer at another address refused")
	}
	if spent, _ := a.state(origin{peer: "fresh"}); spent {
		t.Fatal("a peer with no address (relayed) refused")
	}
	now = now.Add(time.Second) // 3 MiB back to the address
	if spent, _ := a.state(fresh); spent {
		t.Fatal("refused once the address's budget refilled a little")
	}

	const six = "2001:db8:1:2::/64"
	a.charge(at("v6a", six), 8<<20)
	a.charge(at("v6b", six), 8<<20)
	if spent, _ := a.state(at("v6c", six)); !spent {
		t.Fatal("peers in one IPv6 /64 do not share its budget")
	}
}

// The /48s of one IPv6 /32 share its budget, DefaultAbandonNetShare
// /48s' at the defaults: a network that takes a fresh /48 once each has
// spent its budget is refused once the /32's is spent, sixteen /48s in;
// one /48 abandoning all the fetch memory a provider has (1 GiB) beyond
// its own budget leaves its /32 serving the other sites; a peer in
// another /32 is not refused.
func TestAbandonBudgetPerNetwork(t *testing.T) {
	now := time.Unix(1000, 0)
	const peerBurst = DefaultAbandonBurst
	a := newAbandonBudget(0, peerBurst, [tiers]int{}) // the default shares, never refilled
	a.now = func() time.Time { return now }
	site := int64(peerBurst * DefaultAbandonAddrShare * DefaultAbandonWideShare)
	a.charge(at("greedy", "2001:db8:ffff:1::/64"), site+(1<<30))
	if spent, _ := a.state(at("fresh", "2001:db8:1:1::/64")); spent {
		t.Fatal("one /48 abandoning 1 GiB beyond its budget refused the other /48s of its /32")
	}
	a = newAbandonBudget(0, peerBurst, [tiers]int{})
	a.now = func() time.Time { return now }
	for i := range DefaultAbandonNetShare {
		o := at(peer.ID(fmt.Sprint("id", i)), fmt.Sprintf("2001:db8:%x:1::/64", i+1))
		if spent, _ := a.state(o); spent {
			t.Fatalf("/48 %d refused before its /32's %d MiB were spent", i, DefaultAbandonNetShare*site>>20)
		}
		a.charge(o, site) // the /48's own budget spent
	}
	if spent, owing := a.state(at("fresh", "2001:db8:ff:1::/64")); !spent || owing {
		t.Fatalf("a fresh peer in a fresh /48 of a /32 whose budget is spent: spent %v, owing %v; want spent only", spent, owing)
	}
	if spent, _ := a.state(at("fresh", "2001:db9:1:1::/64")); spent {
		t.Fatal("a peer in another /32 refused")
	}
}

// The addresses of one IPv4 /24 share its budget, an IPv6 /32's (64
// addresses' at the defaults): one address abandoning all the fetch
// memory a provider has (1 GiB) beyond its own budget leaves the rest of
// its /24 served, as the /24 is charged only what the address's bucket
// took; 64 addresses each spending their budget refuse a fresh one of
// their /24, not one in another /24.
func TestAbandonBudgetPerIPv4Net(t *testing.T) {
	now := time.Unix(1000, 0)
	const peerBurst = DefaultAbandonBurst
	addr := int64(peerBurst * DefaultAbandonAddrShare)
	a := newAbandonBudget(0, peerBurst, [tiers]int{}) // the default shares, never refilled
	a.now = func() time.Time { return now }
	greedy := at("greedy", "203.0.113.200/32")
	a.charge(greedy, addr+(1<<30))
	if spent, _ := a.state(greedy); !spent {
		t.Fatal("an address that abandoned 1 GiB beyond its budget still served")
	}
	if spent, _ := a.state(at("fresh", "203.0.113.1/32")); spent {
		t.Fatal("one address abandoning 1 GiB beyond its budget refused the rest of its /24")
	}
	a = newAbandonBudget(0, peerBurst, [tiers]int{})
	a.now = func() time.Time { return now }
	const share = DefaultAbandonNetShare * DefaultAbandonWideShare
	for i := range share {
		o := at(peer.ID(fmt.Sprint("id", i)), fmt.Sprintf("203.0.113.%d/32", i+1))
		if spent, _ := a.state(o); spent {
			t.Fatalf("address %d refused before its /24's %d MiB were spent", i, share*addr>>20)
		}
		a.charge(o, addr) // the address's own budget spent
	}
	if spent, owing := a.state(at("fresh", "203.0.113.250/32")); !spent || owing {
		t.Fatalf("a fresh peer at a fresh address of a /24 whose budget is spent: spent %v, owing %v; want spent only", spent, owing)
	}
	if spent, _ := a.state(at("fresh", "203.0.114.250/32")); spent {
		t.Fatal("a peer in another /24 refused")
	}
	if spent, _ := a.state(at("fresh", "2001:db8:1:1::/64")); spent {
		t.Fatal("an IPv6 peer refused beside a spent IPv4 /24")
	}
}

// A /48 feeds its /32 only what its own bucket took: one barely positive
// that resets the whole fetch memory (1 GiB) in flight charges its /32
// its burst, not 1 GiB, so keeping the /32 spent takes its share of sites
// (DefaultAbandonNetShare) abandoning at their full rate together. Here
// the sites take turns for the memory (one 1 GiB reset a second at most,
// each from a fresh peer ID and /64): one site fewer never keeps a
// never-charged /48 of the /32 refused, the share keeps it refused.
func TestAbandonNetworkTakesItsShareOfSites(t *testing.T) {
	refusedWith := func(sites int) (refused, steps int) {
		start := time.Unix(1000, 0)
		now := start
		a := newAbandonBudget(DefaultAbandonRate, DefaultAbandonBurst, [tiers]int{})
		a.now = func() time.Time { return now }
		honest := at("honest", "2001:db8:ffff:1::/64")
		cycle := 0
		for range 30 * 60 { // 30 minutes, 1 s steps
			now = now.Add(time.Second)
			for i := range sites { // the first /48 whose budget is positive takes the memory
				o := at(peer.ID(fmt.Sprint("p", cycle)), fmt.Sprintf("2001:db8:%x:%x::/64", i+1, cycle%0xffff+1))
				if spent, _ := a.state(o); !spent {
					a.charge(o, 1<<30)
					cycle++
					break
				}
			}
			if now.Sub(start) > 5*time.Minute { // past the /32's burst
				steps++
				if spent, _ := a.state(honest); spent {
					refused++
				}
			}
		}
		return refused, steps
	}
	if refused, steps := refusedWith(DefaultAbandonNetShare - 1); refused > 0 {
		t.Errorf("%d /48s kept a clean /48 of their /32 refused %d of %d s", DefaultAbandonNetShare-1, refused, steps)
	}
	if refused, steps := refusedWith(DefaultAbandonNetShare); refused*2 < steps {
		t.Errorf("%d /48s abandoning at their full rate kept their /32 spent only %d of %d s", DefaultAbandonNetShare, refused, steps)
	}
}

// What a /48 passes on to its /32 (an IPv4 address to its /24) is what its
// own bucket took: all of a charge within its debt limit, none of what
// that limit forgave.
func TestAbandonNetworkChargedWhatSiteTook(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(0, DefaultAbandonBurst, [tiers]int{}) // never refilled
	a.now = func() time.Time { return now }
	site := int64(DefaultAbandonBurst * DefaultAbandonAddrShare * DefaultAbandonWideShare)
	network := site * DefaultAbandonNetShare
	o := at("p", "2001:db8:1:1::/64")
	a.charge(o, 3*site) // the /48 goes from its burst to minus it: 2 bursts taken
	a.charge(o, site)   // at its floor: nothing taken
	got := a.blocks[tierNet].tokens(o.blocks[tierNet], now)
	if want := float64(network - 2*site); got != want {
		t.Fatalf("the /32 holds %.0f MiB after its /48 took 2 of 4 bursts charged, want %.0f MiB", got/(1<<20), want/(1<<20))
	}
	if got := a.blocks[tierSite].tokens(o.blocks[tierSite], now); got != float64(-site) {
		t.Fatalf("the /48 holds %.0f MiB, want minus its burst", got/(1<<20))
	}

	addr := int64(DefaultAbandonBurst * DefaultAbandonAddrShare) // an IPv4 /24 is charged what its address took
	v4 := at("q", "203.0.113.7/32")
	a.charge(v4, 3*addr)
	a.charge(v4, addr)
	if got := a.blocks[tierNet].tokens(v4.blocks[tierNet], now); got != float64(network-2*addr) {
		t.Fatalf("the /24 holds %.0f MiB after its address took 2 of 4 bursts charged, want %.0f MiB", got/(1<<20), float64(network-2*addr)/(1<<20))
	}
}

// Each address block's wider blocks: a global IPv6 /64's /48 and /32; an
// IPv4 address's /24, in the network tier (a /24 is no site's); none for a
// link-local IPv6 address (fe80::/48 holds every LAN peer, so one that
// abandons replies would spend the others' budget).
func TestBlocksOf(t *testing.T) {
	for block, want := range map[string][tiers]string{
		"fe80::1/128":           {"fe80::1/128", "invalid Prefix", "invalid Prefix"},
		"2001:db8:1:2::/64":     {"2001:db8:1:2::/64", "2001:db8:1::/48", "2001:db8::/32"},
		"2a02:1234:5678:9::/64": {"2a02:1234:5678:9::/64", "2a02:1234:5678::/48", "2a02:1234::/32"},
		"203.0.113.7/32":        {"203.0.113.7/32", "invalid Prefix", "203.0.113.0/24"},
		"198.51.100.255/32":     {"198.51.100.255/32", "invalid Prefix", "198.51.100.0/24"},
	} {
		for t_, b := range blocksOf(netip.MustParsePrefix(block)) {
			if got := b.String(); got != want[t_] {
				t.Errorf("tier %d block of %s = %s, want %s", t_, block, got, want[t_])
			}
		}
	}
}
