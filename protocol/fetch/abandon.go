package fetch

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
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
// since a site is given many /64s. While any of them is spent the peer's GETs
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
			c.abandonAddrShare = n
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
// GETs of every peer in it are refused. A holder of wider prefixes still
// has a budget per /48 (a /32 has 65,536). n < 1 keeps the default. The
// honest peers of a site share its budget with one that abandons.
func WithAbandonWideShare(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.abandonWideShare = n
		}
	}
}

// wideBits is the prefix length of the IPv6 blocks WithAbandonWideShare
// budgets.
const wideBits = 48

// origin is who a stream's replies are abandoned by: its peer, the block
// of addresses its connection comes from, and for IPv6 that block's /48
// (each invalid when it has none).
type origin struct {
	peer        peer.ID
	block, wide netip.Prefix
}

// originOf returns the origin of s.
func originOf(s network.Stream) origin {
	o := origin{peer: s.Conn().RemotePeer()}
	if b, ok := p2p.AddrBlock(s.Conn().RemoteMultiaddr()); ok {
		o.block, o.wide = b, wideOf(b)
	}
	return o
}

// wideOf returns the /48 of an IPv6 block, and no prefix for IPv4 or a
// link-local address (fe80::/48 would be every LAN peer's).
func wideOf(b netip.Prefix) netip.Prefix {
	if !b.Addr().Is6() || b.Addr().IsLinkLocalUnicast() {
		return netip.Prefix{}
	}
	w, _ := b.Addr().Prefix(wideBits)
	return w
}

// abandonBudget holds the buckets of peers, of addresses and of IPv6 /48s
// that abandoned replies lately; one not in it has a full bucket.
type abandonBudget struct {
	now func() time.Time

	mu    sync.Mutex
	peers bucketRecord[peer.ID]
	addrs bucketRecord[netip.Prefix]
	wides bucketRecord[netip.Prefix]
}

func newAbandonBudget(rate, burst int64, addrShare, wideShare int) *abandonBudget {
	if burst <= 0 {
		rate, burst = DefaultAbandonRate, DefaultAbandonBurst
	}
	rate = max(rate, 0) // 0 only from tests: WithAbandonBudget takes none
	if addrShare < 1 {
		addrShare = DefaultAbandonAddrShare
	}
	if wideShare < 1 {
		wideShare = DefaultAbandonWideShare
	}
	addrRate, addrBurst := times(addrShare, rate), times(addrShare, burst)
	return &abandonBudget{now: time.Now,
		peers: newBucketRecord[peer.ID](rate, burst),
		addrs: newBucketRecord[netip.Prefix](addrRate, addrBurst),
		wides: newBucketRecord[netip.Prefix](times(wideShare, addrRate), times(wideShare, addrBurst))}
}

// charge takes n bytes abandoned by o from its peer's bucket, its
// address's and its /48's, each down to minus its burst.
func (a *abandonBudget) charge(o origin, n int64) {
	if n <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.peers.charge(o.peer, n, now)
	if o.block.IsValid() {
		a.addrs.charge(o.block, n, now)
	}
	if o.wide.IsValid() {
		a.wides.charge(o.wide, n, now)
	}
}

// state reports whether o's GETs are refused (its peer's bucket, its
// address's or its /48's is spent) and whether its blocked streams count
// as stalled (its peer owes more than MaxGetBytes, or half a smaller
// burst). An address's or /48's debt alone does not make its streams
// stalled: the honest peers behind a NAT keep their protection beside one
// that abandons.
func (a *abandonBudget) state(o origin) (spent, owing bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	tokens := a.peers.tokens(o.peer, now)
	spent = tokens <= 0
	owing = tokens < float64(a.peers.burst-min(MaxGetBytes, a.peers.burst/2))
	if o.block.IsValid() && !spent {
		spent = a.addrs.tokens(o.block, now) <= 0
	}
	if o.wide.IsValid() && !spent {
		spent = a.wides.tokens(o.wide, now) <= 0
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
		Reason: "this peer, or the peers at its address or in its IPv6 /48, reset streams leaving more replies unread than their budget allows; read the replies you ask for, and retry in a few seconds"}
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
