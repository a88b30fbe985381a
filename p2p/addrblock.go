package p2p

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrBlock returns the block of addresses a remote address a belongs to
// (IPBlock of its IP), for budgets that one holder of many peer IDs should
// share. It reports false for an address without an IP of the peer's own:
// a relayed one (the IP is the relay's) or a non-IP transport's.
func AddrBlock(a ma.Multiaddr) (netip.Prefix, bool) {
	if len(a) == 0 {
		return netip.Prefix{}, false
	}
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.Prefix{}, false
	}
	first, rest := ma.SplitFirst(a)
	if first != nil && first.Protocol().Code == ma.P_IP6ZONE {
		first, _ = ma.SplitFirst(rest)
	}
	if first == nil {
		return netip.Prefix{}, false
	}
	code := first.Protocol().Code
	if code != ma.P_IP4 && code != ma.P_IP6 {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(first.RawValue())
	if !ok {
		return netip.Prefix{}, false
	}
	return IPBlock(ip), true
}

// nat64 is the well-known prefix of IPv4 addresses translated to IPv6
// (RFC 6052): a node reached through NAT64 or SIIT sees each IPv4 peer as
// 64:ff9b::a.b.c.d.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// IPBlock returns the block of addresses ip belongs to, for budgets and
// bounds that one holder of many addresses should share: its IPv4 address
// (an IPv4-mapped IPv6 address, or one translated by NAT64 or SIIT,
// 64:ff9b::/96, counts as the IPv4 address it carries: otherwise every
// IPv4 peer reached through a translator would be one block), or the /64
// of its IPv6 address, the least a site is given: the addresses of one /64
// share a block, so a host cannot take a fresh block per connection or
// peer ID by changing its interface identifier. A host given a wider
// prefix (a /56 has 256 /64s, a /48 65,536) has as many blocks as /64s; a
// bound that should bind it must also group the blocks by wider prefixes
// (WideBlocks). A link-local address is its own block (/128, whatever its
// zone, which names the node's own interface, not the peer): every
// link-local peer has the same /64, fe80::/64, so by /64 one LAN peer
// would spend every other's budget. An invalid ip has the zero Prefix.
func IPBlock(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	if ip.IsLinkLocalUnicast() {
		return netip.PrefixFrom(ip, 128)
	}
	p, _ := ip.Prefix(64)
	return p
}

// WideBlocks returns the wider blocks an IPv6 block b (from IPBlock) is in:
// its /48, as a site is commonly given a /56 or a /48 (65,536 /64s), and
// its /32, the least a registry allocates a network (65,536 /48s). An IPv4
// block has none (its /24 is no site's), nor has a link-local one
// (fe80::/48 would be every LAN peer's): both are the zero Prefix.
func WideBlocks(b netip.Prefix) (site, network netip.Prefix) {
	ip := b.Addr()
	if !ip.Is6() || ip.IsLinkLocalUnicast() {
		return netip.Prefix{}, netip.Prefix{}
	}
	site, _ = ip.Prefix(48)
	network, _ = ip.Prefix(32)
	return site, network
}
