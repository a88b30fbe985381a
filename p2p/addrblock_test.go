package p2p_test

import (
	"net/netip"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/p2p"
)

// An address's block is its IPv4 address, or its IPv6 /64, a link-local
// one's its own address whatever its zone (a zone gave it no block, and so
// no budget; by /64 every link-local peer would share fe80::/64); an
// address with no IP of the peer's own (relayed, DNS, none) has none.
func TestAddrBlock(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/127.0.0.1/tcp/4001", "127.0.0.1/32"},
		{"/ip4/203.0.113.7/udp/4001/quic-v1", "203.0.113.7/32"},
		{"/ip6/2001:db8:1:2:aaaa::1/tcp/4001", "2001:db8:1:2::/64"},
		{"/ip6/2001:db8:1:2:bbbb::9/udp/1/quic-v1", "2001:db8:1:2::/64"},
		{"/ip6/::ffff:198.51.100.4/tcp/1", "198.51.100.4/32"},
		{"/ip6/64:ff9b::c000:201/tcp/1", "192.0.2.1/32"},     // NAT64: its IPv4 peer
		{"/ip6/64:ff9b::c633:6401/tcp/1", "198.51.100.1/32"}, // another one
		{"/ip6/64:ff9b:0:1::c000:201/tcp/1", "64:ff9b:0:1::/64"},
		{"/ip6zone/eth0/ip6/fe80::1/tcp/1", "fe80::1/128"},
		{"/ip6zone/eth1/ip6/fe80::2:1/udp/1/quic-v1", "fe80::2:1/128"},
		{"/ip6/fe80::1/tcp/1", "fe80::1/128"},
		{"/ip6zone/eth0", ""},
		{"/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWGRUVh7wGhEoZKUYwNhPw3bpn8RW7FJQVHuvTCRFDHFKV/p2p-circuit", ""},
		{"/dns4/example.org/tcp/4001", ""},
	} {
		a, err := ma.NewMultiaddr(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p2p.AddrBlock(a)
		if !ok && tc.want != "" || ok && got.String() != tc.want {
			t.Errorf("AddrBlock(%s) = %v, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
	if _, ok := p2p.AddrBlock(nil); ok {
		t.Error("AddrBlock(nil) has a block")
	}
}

// The wider blocks of a global IPv6 block are its /48 and /32; an IPv4
// block (plain, mapped or translated by NAT64) and a link-local one have
// none.
func TestWideBlocks(t *testing.T) {
	for _, tc := range []struct{ ip, block, site, network string }{
		{"2a02:1234:5678:9:aaaa::1", "2a02:1234:5678:9::/64", "2a02:1234:5678::/48", "2a02:1234::/32"},
		{"192.0.2.1", "192.0.2.1/32", "", ""},
		{"::ffff:192.0.2.1", "192.0.2.1/32", "", ""},
		{"64:ff9b::c000:201", "192.0.2.1/32", "", ""},
		{"fe80::1%eth0", "fe80::1/128", "", ""},
	} {
		b := p2p.IPBlock(netip.MustParseAddr(tc.ip))
		site, network := p2p.WideBlocks(b)
		str := func(p netip.Prefix) string {
			if !p.IsValid() {
				return ""
			}
			return p.String()
		}
		if str(b) != tc.block || str(site) != tc.site || str(network) != tc.network {
			t.Errorf("%s: block %v, wide %v %v; want %q %q %q", tc.ip, b, site, network, tc.block, tc.site, tc.network)
		}
	}
	if b := p2p.IPBlock(netip.Addr{}); b.IsValid() {
		t.Errorf("IPBlock of no address: %v", b)
	}
}
