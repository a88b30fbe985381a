package distributor

import (
	"net"
	"net/netip"

	"github.com/satchel-net/satchel/p2p"
)

// The blocks of addresses a connection counts against, narrowest first:
// its client (p2p.IPBlock: an IPv4 address, an IPv6 /64, which one host
// usually owns, or a link-local address), and for a global IPv6 client
// its /48 (a site is commonly given a /56 or a /48: 65,536 /64s) and its
// /32 (the least a registry allocates a network: 65,536 /48s). A wider
// block holds at most clientTierShare times the connections of the tier
// below it, so fresh /64s of one site, or fresh /48s of one network, buy
// no connections beyond that; and when it is full, an idle connection of
// its heaviest sub-block is closed for a newcomer of a lighter one
// (connLimiter.blockRoomLocked), so no sub-block keeps the others out.
const (
	tierClient = iota
	tierSite
	tierNet
	clientTiers
)

// clientTierShare is how many blocks' connection bounds of the tier below
// a wider block has: at the default 64 connections per client, a /48
// holds 256 and a /32 1024, a quarter of the default --max-conns. Large
// ISPs hold far wider prefixes than a /32, so their customers spread over
// many /32s; a /32 is a small network's whole, or one slice of a large
// one's.
const clientTierShare = 4

// clientBlocks are the blocks of each tier a connection counts against
// (the zero Prefix where it has none).
type clientBlocks [clientTiers]netip.Prefix

// clientOf returns the blocks a connection from a counts against (none
// for an address that is not TCP).
func clientOf(a net.Addr) clientBlocks {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return clientBlocks{}
	}
	return clientBlocksOf(ta.AddrPort().Addr())
}

// clientBlocksOf is clientOf for an IP address: its client (clientPrefix),
// and for a global IPv6 address its /48 and /32 (p2p.WideBlocks).
func clientBlocksOf(ip netip.Addr) clientBlocks {
	c := clientPrefix(ip)
	site, network := p2p.WideBlocks(c)
	return clientBlocks{tierClient: c, tierSite: site, tierNet: network}
}

// clientPrefix returns the client an IP address counts as, p2p.IPBlock's
// block of it, as the fetch protocol's budgets count peers: the address
// for IPv4 (an IPv4-mapped or NAT64-translated IPv6 address is the IPv4
// address it carries), its /64 for IPv6, the address itself for a
// link-local one (every LAN client would otherwise be fe80::/64); the
// zero Prefix for an invalid address.
func clientPrefix(ip netip.Addr) netip.Prefix {
	return p2p.IPBlock(ip)
}
