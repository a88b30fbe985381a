package p2p

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrBlock returns the block of addresses a remote address a belongs to,
// for budgets that one holder of many peer IDs should share: its IPv4
// address (an IPv4-mapped IPv6 address counts as IPv4), or the /64 of its
// IPv6 address, the least a site is given: the addresses of one /64 share
// a block, so a host cannot take a fresh block per peer ID by changing its
// interface identifier. A host given a wider prefix (a /56 has 256 /64s, a
// /48 65,536) has as many blocks as /64s; a budget that should bind it
// must also group the blocks by wider prefixes (protocol/fetch does, by
// /48 and /32). A link-local address is its own block (/128, whatever its zone,
// which names the provider's own interface, not the peer): every
// link-local peer has the same /64, fe80::/64, so by /64 one LAN peer
// would spend every other's budget. It reports false
// for an address without an IP of the peer's own: a relayed one (the IP
// is the relay's) or a non-IP transport's.
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
	if ip = ip.Unmap(); ip.Is4() {
		return netip.PrefixFrom(ip, 32), true
	}
	ip = ip.WithZone("")
	if ip.IsLinkLocalUnicast() {
		return netip.PrefixFrom(ip, 128), true
	}
	p, err := ip.Prefix(64)
	return p, err == nil
}
