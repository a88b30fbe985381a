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
// blocks of the one below it buy.
const (
	tierAddr = iota // an IPv4 address or an IPv6 /64 (p2p.AddrBlock)
	tierSite        // the address's IPv6 /48
	tierNet         // the address's IPv6 /32
	tiers
)

// origin is who a stream's replies are abandoned by: its peer, and the
// block of each tier its connection's address is in (invalid where it has
// none: a relayed address has no block, and IPv4 or link-local ones have
// no wider tiers).
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
// p2p.AddrBlock) is in: b, and for a global IPv6 block its /48 and /32
// (p2p.WideBlocks). An IPv4 address has no wider tiers (its /24 is no
// site's), nor has a link-local address (fe80::/48 would be every LAN
// peer's).
func blocksOf(b netip.Prefix) [tiers]netip.Prefix {
	site, network := p2p.WideBlocks(b)
	return [tiers]netip.Prefix{tierAddr: b, tierSite: site, tierNet: network}
}
