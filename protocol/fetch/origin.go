package fetch

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
)

// The tiers of address blocks a peer's abandoned replies are charged to
// besides the peer, narrowest first. A peer ID is free, an IPv4 address
// or an IPv6 /64 is not; but a site is commonly given a /56 or a /48
// (65,536 /64s), and whoever routes an IPv6 /32 (the least a registry
// allocates a network) has 65,536 /48s: each tier bounds what fresh
// blocks of the one below it buy. An IPv4 /24 is in the network tier too
// (ipv4Net): renting one buys 256 addresses.
const (
	tierAddr = iota // an IPv4 address or an IPv6 /64 (p2p.AddrBlock)
	tierSite        // the address's IPv6 /48
	tierNet         // the address's IPv6 /32, or its IPv4 /24
	tiers
)

// origin is who a stream's replies are abandoned by: its peer, and the
// block of each tier its connection's address is in (invalid where it has
// none: a relayed address has no block, an IPv4 one no site, a link-local
// one no wider tiers).
type origin struct {
	peer   peer.ID
	blocks [tiers]netip.Prefix
}

// originOf returns the origin of s.
func originOf(s network.Stream) origin {
	o := origin{peer: s.Conn().RemotePeer()}
	if b, ok := p2p.AddrBlock(s.Conn().RemoteMultiaddr()); ok {
		o.blocks = blocksOf(b)
	}
	return o
}

// blocksOf returns the blocks of each tier an address block b (from
// p2p.AddrBlock) is in: b, for a global IPv6 block its /48 and /32
// (p2p.WideBlocks), and for an IPv4 address its /24 (ipv4Net). A
// link-local IPv6 address has no wider tiers (fe80::/48 would be every
// LAN peer's).
func blocksOf(b netip.Prefix) [tiers]netip.Prefix {
	site, network := p2p.WideBlocks(b)
	if !network.IsValid() {
		network = ipv4Net(b)
	}
	return [tiers]netip.Prefix{tierAddr: b, tierSite: site, tierNet: network}
}

// ipv4Net returns the /24 of an IPv4 address block b (from p2p.AddrBlock,
// which counts an IPv4-mapped or NAT64 address as its IPv4 address), or
// the zero Prefix for an IPv6 block. It is for abandonment only: the
// distributor keeps p2p.WideBlocks' policy, where a /24 is no site's.
// An IPv4 /24 has no site tier, and is in the network tier, so its budget
// is an IPv6 /32's (64 addresses' at the defaults), charged only what its
// address's bucket took, as a /32 is only what its /48's took
// (abandonBudget.charge). Without it a rented /24 buys 256 address
// budgets, about 1 GiB/s of abandonment; with it 256 MiB/s. 64 addresses'
// is generous because a /24 may be a NAT pool's or an office's, whose
// honest peers share it with one that abandons: one address takes at most
// twice its burst at once (256 MiB of the /24's 8 GiB) and then its rate,
// so spending the /24 takes 64 of its addresses abandoning their whole
// budgets.
func ipv4Net(b netip.Prefix) netip.Prefix {
	if !b.Addr().Is4() {
		return netip.Prefix{}
	}
	p, _ := b.Addr().Prefix(24)
	return p
}
