package p2p

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrBlock returns the block of addresses a remote address a belongs to,
// for budgets that one holder of many peer IDs should share: its IPv4
// address (an IPv4-mapped IPv6 address counts as IPv4), or the /64 of its
// IPv6 address (the least a site is given, so one host cannot take a fresh
// address per peer ID). It reports false for an address without an IP of
// the peer's own: a relayed one (the IP is the relay's) or a non-IP
// transport's.
func AddrBlock(a ma.Multiaddr) (netip.Prefix, bool) {
	if len(a) == 0 {
		return netip.Prefix{}, false
	}
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.Prefix{}, false
	}
	first, _ := ma.SplitFirst(a)
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
	p, err := ip.WithZone("").Prefix(64)
	return p, err == nil
}
