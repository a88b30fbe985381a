package p2p

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Provide announces on the DHT that this host can serve c: it stores a
// provider record, with the host's addresses, on the peers closest to c.
// Records expire (after 48 hours by default), so a node re-provides what it
// keeps.
func (h *Host) Provide(ctx context.Context, c cid.Cid) error {
	if err := h.dht.Provide(ctx, c, true); err != nil {
		return fmt.Errorf("p2p: provide %s: %w", c, err)
	}
	return nil
}

// FindProviders looks up, on the DHT, peers that provide c, and returns up to
// n of them (all that the lookup finds if n <= 0) with the addresses they
// announced. It returns when n are found or the lookup completes; it returns an
// error only when ctx ends before any provider is found.
func (h *Host) FindProviders(ctx context.Context, c cid.Cid, n int) ([]peer.AddrInfo, error) {
	if !c.Defined() {
		return nil, errors.New("p2p: find providers: undefined CID")
	}
	if n < 0 {
		n = 0 // the DHT's "no limit"
	}
	var found []peer.AddrInfo
	for p := range h.dht.FindProvidersAsync(ctx, c, n) {
		found = append(found, p)
	}
	if len(found) == 0 && ctx.Err() != nil {
		return nil, fmt.Errorf("p2p: find providers of %s: %w", c, ctx.Err())
	}
	return found, nil
}

// RefreshRoutingTable runs a routing table refresh now, looking up peers near
// this host and in every bucket, and returns when it is done. The DHT also
// refreshes on its own, periodically and whenever its table runs low.
func (h *Host) RefreshRoutingTable(ctx context.Context) error {
	select {
	case err := <-h.dht.RefreshRoutingTable():
		if err != nil {
			return fmt.Errorf("p2p: refresh routing table: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Address and peer filters of the DHT.
//
// kad-dht was written for the public IPFS network, whose peers must not learn
// each other's loopback and private addresses. Its dual (LAN/WAN) DHT and its
// full-routing-table client filter them out: PublicQueryFilter and
// PublicRoutingTableFilter only accept peers that look publicly reachable, and
// the WAN DHT strips loopback addresses from provider records with its
// AddressFilter. A plain IpfsDHT (which we run) applies none of these in
// v0.42.0, but its defaults are not a contract, so the filters are set here
// explicitly, all of them accepting loopback and private addresses: Satchel
// nodes find each other on whatever network they share, loopback included,
// which is the whole network in tests and single-machine deployments. Nor do
// we set a routing-table diversity filter: it groups peers by IP prefix and
// would squeeze every loopback peer into one group.

// DialableAddr reports whether a is an address a Satchel node dials a peer
// at, the rule of the DHT's address filter: loopback and private addresses
// are (nodes find each other on whatever network they share, loopback
// included), unspecified ones (0.0.0.0, ::) are not, naming no host.
// Protocols that take addresses from peers (a store forward list) filter
// them with it as the DHT does.
func DialableAddr(a ma.Multiaddr) bool { return !manet.IsIPUnspecified(a) }

// dialableAddrs is the DHT's address filter, applied to the addresses stored
// in the peerstore, announced in provider records and handed out to other
// peers: the addresses DialableAddr keeps.
func dialableAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	return ma.FilterAddrs(addrs, DialableAddr)
}

// queryFilter decides which peers a DHT lookup may dial: any peer with an
// address that dialableAddrs keeps, loopback included.
func queryFilter(_ any, ai peer.AddrInfo) bool {
	return len(dialableAddrs(ai.Addrs)) > 0
}

// routingTableFilter decides which connected peers enter the routing table:
// every peer that speaks /satchel/kad/1.0.0 (which the DHT checks before
// calling it), whatever its address.
func routingTableFilter(_ any, _ peer.ID) bool { return true }
