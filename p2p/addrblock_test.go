package p2p_test

import (
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
