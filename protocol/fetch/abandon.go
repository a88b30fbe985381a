package fetch

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/internal/debtbucket"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Abandoned replies. A stall is judged by how long one reply write has
// been blocked (WithStallEviction), so a reader that resets each stream
// just before the stall age and opens another is never judged stalled: it
// holds its share of the fetch budget for ever, and makes the provider read
// blocks it never takes. So the replies a stream leaves unsent when its
// write fails (its reader reset it, or read nothing until the write timed
// out) — the one being written and those prepared behind it — are charged
// to the peer's abandonment budget, a token bucket of bytes (burst, refilled at
// rate, down to minus the burst), and to its address's (WithAbandonAddrShare),
// since peer IDs are free, and for IPv6 to its /48's (WithAbandonWideShare),
// since a site is given many /64s, and its /32's (WithAbandonNetShare),
// since a network is given many /48s, and for IPv4 to its /24's (as much
// as a /32's), since a /24 is 256 addresses (origin.go; the /32 only what
// the /48's bucket took, the /24 what the address's took). While any of them is spent the peer's GETs
// are REFUSED busy before anything is read, and while the peer owes more
// than a little (MaxGetBytes, or half a smaller burst) its blocked streams
// count as stalled whatever their age: a GET that finds the shared budget
// spent resets them first. The records of buckets are bounded; charges
// beyond one go to overflow buckets shared by hash (bucketRecord), which
// bind their chargers and a few others. An honest reader reads what it
// asks for and never resets with replies pending (Client.Close drains
// them), except when it gives up on a provider; the burst is for that,
// and a reply or two abandoned keeps its streams' protection.

const (
	// DefaultAbandonRate and DefaultAbandonBurst are a peer's abandonment
	// budget (see WithAbandonBudget): 16 MiB at once (four streams' held
	// replies), refilled at 512 KiB a second, so a peer that abandons its
	// whole 64 MiB share is refused for 32 s and unprotected 24 s more.
	DefaultAbandonRate  = 512 << 10
	DefaultAbandonBurst = 16 << 20
)

// WithAbandonBudget sets each peer's budget of reply bytes left unsent by
// streams it resets: rate bytes a second, burst bytes at once (defaults
// DefaultAbandonRate, DefaultAbandonBurst). A rate or burst of 0 or less
// keeps both defaults: a budget that never refilled would refuse a peer
// for good once spent, and every newcomer sharing an overflow bucket with
// it once the record is full.
func WithAbandonBudget(rate, burst int64) Option {
	return func(c *config) {
		if rate > 0 && burst > 0 {
			c.abandonRate, c.abandonBurst = rate, burst
		}
	}
}

// DefaultAbandonAddrShare is how many peers' abandonment budgets an
// address has (see WithAbandonAddrShare).
const DefaultAbandonAddrShare = 8

// WithAbandonAddrShare sets the abandonment budget of each address (an
// IPv4 address, an IPv6 /64; see p2p.AddrBlock) to that of n peers (rate
// and burst n times WithAbandonBudget's; default
// DefaultAbandonAddrShare). Peer IDs are free, so a reader could take a
// fresh one, and a full budget, for every cycle of streams: what its
// peers abandon is charged to their address too, and while the address's
// budget is spent the GETs of every peer at it are refused. n < 1 keeps
// the default. Peers behind one NAT share an address: a generous n keeps
// honest ones served beside a peer that abandons.
func WithAbandonAddrShare(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.abandonShares[tierAddr] = n
		}
	}
}

// DefaultAbandonWideShare is how many addresses' abandonment budgets an
// IPv6 /48 has (see WithAbandonWideShare).
const DefaultAbandonWideShare = 4

// WithAbandonWideShare sets the abandonment budget of each IPv6 /48 to
// that of n addresses (n times WithAbandonAddrShare's; default
// DefaultAbandonWideShare). An address's budget is its /64's, and a site
// is commonly given a /56 (256 /64s) or a /48 (65,536): what the peers in
// one /48 abandon is charged to it too, and while its budget is spent the
// GETs of every peer in it are refused. A holder of wider prefixes is
// bound by its /32's budget (WithAbandonNetShare). n < 1 keeps the
// default. The honest peers of a site share its budget with one that
// abandons.
func WithAbandonWideShare(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.abandonShares[tierSite] = n
		}
	}
}

// DefaultAbandonNetShare is how many /48s' abandonment budgets an IPv6 /32
// has (see WithAbandonNetShare): with the other defaults 8 GiB at once,
// refilled at 256 MiB/s, as much as 64 IPv4 addresses have. An IPv4 /24
// has as much as an IPv6 /32.
const DefaultAbandonNetShare = 16

// WithAbandonNetShare sets the abandonment budget of each IPv6 /32 to that
// of n /48s (n times WithAbandonWideShare's; default
// DefaultAbandonNetShare). Whoever routes a /32 has 65,536 /48s, each with
// a budget of its own: what the peers in one /32 abandon is charged to it
// too, so fresh /48s buy no budget beyond its share, and while it is spent
// the GETs of every peer in it are refused. A /32 is the least a registry
// allocates a network, so it may be a small ISP's whole network, and its
// honest customers share its budget with one that abandons: n must be
// generous. A /48 charges its /32 only what its own bucket took above its
// debt floor (abandonBudget.charge): at most twice its burst at once (a
// fresh /48's whole charge at the defaults, where that is the fetch
// protocol's 1 GiB of memory), then its own rate. So at the defaults (an
// 8 GiB /32 refilled at 256 MiB/s, 512 MiB /48s at 16 MiB/s) no single
// site, however it abandons, spends its /32's budget, and keeping it spent
// takes n sites abandoning at their full rate together (n-1 do not:
// TestAbandonNetworkTakesItsShareOfSites). An IPv4 /24 has the same budget
// (n × WideShare addresses'), and is charged what its addresses' buckets
// took. n < 1 keeps the default.
func WithAbandonNetShare(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.abandonShares[tierNet] = n
		}
	}
}

// defaultAbandonShares are each tier's share of the tier below it (of a
// peer's budget for tierAddr).
var defaultAbandonShares = [tiers]int{DefaultAbandonAddrShare, DefaultAbandonWideShare, DefaultAbandonNetShare}

// abandonBudget holds the buckets of peers, and of the blocks of each
// tier, that abandoned replies lately; one not in it has a full bucket.
type abandonBudget struct {
	now func() time.Time

	mu     sync.Mutex
	peers  bucketRecord[peer.ID]
	blocks [tiers]bucketRecord[netip.Prefix]
}

// newAbandonBudget returns the budgets of a peer (rate and burst), and of
// each tier's blocks: shares[t] times the tier below's (a share < 1
// keeps the default).
func newAbandonBudget(rate, burst int64, shares [tiers]int) *abandonBudget {
	if burst <= 0 {
		rate, burst = DefaultAbandonRate, DefaultAbandonBurst
	}
	rate = max(rate, 0) // 0 only from tests: WithAbandonBudget takes none
	a := &abandonBudget{now: time.Now, peers: newDebtRecord[peer.ID](rate, burst)}
	for t := range a.blocks {
		n := shares[t]
		if n < 1 {
			n = defaultAbandonShares[t]
		}
		rate, burst = times(n, rate), times(n, burst)
		a.blocks[t] = newDebtRecord[netip.Prefix](rate, burst)
	}
	return a
}

// newDebtRecord returns a record of buckets whose debt goes no deeper
// than their burst: however much a key abandons, it is refused for
// 2 × burst / rate at most.
func newDebtRecord[K comparable](rate, burst int64) bucketRecord[K] {
	return newBucketRecord[K](rate, burst, debtbucket.WithDebtLimit(burst))
}

// charge takes n bytes abandoned by o from its peer's bucket, its
// address's and its /48's, and from its /32's what its /48's took (from
// an IPv4 address's /24 what the address's took; origin.go's ipv4Net):
// each goes down to minus its burst. Peer IDs and a site's /64s are free to
// whoever abandons, so their floors must not lessen what the wider tier
// is charged; but a /32's /48s are many customers' sites, and a /48 that
// passed on what its floor forgave would feed its /32 more than its own
// rate (1 GiB in flight, reset whenever its bucket is barely positive,
// every 32 s: twice its rate), so fewer sites than the /32's share
// would keep it spent.
func (a *abandonBudget) charge(o origin, n int64) {
	if n <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.peers.charge(o.peer, n, now)
	took := n // what the narrowest block charged so far took
	for t, b := range o.blocks {
		if !b.IsValid() {
			continue
		}
		charged := n
		if t == tierNet {
			charged = took
		}
		took = a.blocks[t].charge(b, charged, now)
	}
}

// state reports whether o's GETs are refused (its peer's bucket, or any
// of its blocks', is spent) and whether its blocked streams count as
// stalled (its peer owes more than MaxGetBytes, or half a smaller burst).
// A block's debt alone does not make its streams stalled: the honest
// peers behind a NAT, or in a site, keep their protection beside one that
// abandons.
func (a *abandonBudget) state(o origin) (spent, owing bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	tokens := a.peers.tokens(o.peer, now)
	spent = tokens <= 0
	owing = tokens < float64(a.peers.burst-min(MaxGetBytes, a.peers.burst/2))
	for t, b := range o.blocks {
		if b.IsValid() && !spent {
			spent = a.blocks[t].tokens(b, now) <= 0
		}
	}
	return spent, owing
}

// abandonRefusal is the reply to a GET of a peer whose abandonment budget
// is spent. It is marked busy: the budget refills within seconds, and an
// honest reader charged by closing its streams with replies in flight
// (an interrupted get, read-ahead it no longer wanted) should wait and ask
// again rather than count the provider as failed.
func abandonRefusal() *pb.FetchReply {
	return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
		Reason: "this peer, or the peers at its address, in its IPv4 /24 or in its IPv6 /48 or /32, reset streams leaving more replies unread than their budget allows; read the replies you ask for, and retry in a few seconds"}
}

// unsent is the block bytes of j's reply, which a reset stream leaves
// unsent: the whole of it (the part already sent is not known, and is at
// most a flow-control window).
func unsent(j *job) int64 {
	if j.reply == nil {
		return 0
	}
	return int64(len(j.reply.Data))
}
