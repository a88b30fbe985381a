package distributor

import (
	"net"
	"net/netip"
)

// The blocks of addresses a connection counts against, narrowest first:
// its client, an IPv4 address or an IPv6 /64 (one host usually owns a
// /64), and for a global IPv6 client its /48 (a site is commonly given a
// /56 or a /48: 65,536 /64s) and its /32 (the least a registry allocates
// a network: 65,536 /48s). A wider block holds at most
// clientTierShare times the connections of the tier below it, so fresh
// /64s of one site, or fresh /48s of one network, buy no connections
// beyond that.
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

// clientTierBits is the prefix length of each IPv6 tier above tierClient.
var clientTierBits = [clientTiers]int{tierSite: 48, tierNet: 32}

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
// and for a global IPv6 address its /48 and /32 (a link-local client,
// fe80::/64, has none: it is no site's).
func clientBlocksOf(ip netip.Addr) clientBlocks {
	bs := clientBlocks{tierClient: clientPrefix(ip)}
	ip = ip.Unmap().WithZone("")
	if !ip.Is6() || ip.IsLinkLocalUnicast() {
		return bs
	}
	for t := tierSite; t < clientTiers; t++ {
		bs[t], _ = ip.Prefix(clientTierBits[t])
	}
	return bs
}

// clientPrefix returns the client an IP address counts as: the address
// for IPv4 (an IPv4-mapped IPv6 address is IPv4), its /64 for IPv6 (the
// zero Prefix for an address that is neither).
func clientPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
