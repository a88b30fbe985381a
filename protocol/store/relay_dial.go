package store

import (
	"context"
	"errors"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/satchel-net/satchel/p2p"
)

// Which addresses a forwarding provider dials. The forward list is the
// uploader's, and so are its addresses: dialling whatever they name, and
// relaying the dial error, would let an uploader make providers dial
// addresses of its choosing (services beside the provider, other ports)
// and read back what they found. So a provider dials a hop at the
// addresses it knows itself first, takes only dialable addresses from the
// list (forwardAddrs), and reports a hop it cannot reach with
// hopUnreachable, never the dial error.

// hopUnreachable is the reason relayed for a hop no store stream could be
// opened to, whatever the cause.
const hopUnreachable = "could not reach hop; push the chunk to it directly"

// errUnreachable wraps the error of opening a store stream to a hop.
var errUnreachable = errors.New("store: could not reach hop")

// dial opens a store stream to hop. What the host knows of the hop comes
// first: a connection, or addresses it learnt itself (identify, the DHT,
// an earlier forward). Only when it knows none, or they fail to connect,
// are the forward list's addresses that forwardAddrs keeps added (for
// peerstore.TempAddrTTL) and dialled.
func (r *Relay) dial(ctx context.Context, hop Hop) (*Stream, error) {
	ps, nw := r.h.Peerstore(), r.h.Network()
	var err error
	if nw.Connectedness(hop.Peer) == network.Connected || len(ps.Addrs(hop.Peer)) > 0 {
		var s *Stream
		s, err = Open(ctx, r.h, hop.Peer, r.opts...)
		if err == nil || ctx.Err() != nil || nw.Connectedness(hop.Peer) == network.Connected {
			return s, err // connected, a failure is not the addresses'
		}
	}
	known := ps.Addrs(hop.Peer)
	var more []ma.Multiaddr
	for _, a := range forwardAddrs(hop) {
		if !slices.ContainsFunc(known, a.Equal) {
			more = append(more, a)
		}
	}
	if len(more) == 0 {
		if err == nil {
			err = errors.New("no dialable address known or given")
		}
		return nil, err
	}
	ps.AddAddrs(hop.Peer, more, peerstore.TempAddrTTL)
	return Open(ctx, r.h, hop.Peer, r.opts...)
}

// forwardAddrs returns the addresses of a forward list's hop a provider
// may dial: those p2p.DialableAddr keeps, as the DHT's address filter
// does (loopback and private addresses included, so nodes on one machine
// or network forward to each other), that name an IP address, not a host
// name — a name is resolved when dialled, to whatever its owner chooses,
// so no rule on addresses would hold for it, and resolving it would be a
// look-up at the uploader's bidding — and, when they end in /p2p, name
// the hop.
func forwardAddrs(hop Hop) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range hop.Addrs {
		transport, id := peer.SplitAddr(a)
		if transport == nil || (id != "" && id != hop.Peer) {
			continue
		}
		if manet.IsThinWaist(transport) && p2p.DialableAddr(transport) {
			out = append(out, transport)
		}
	}
	return out
}
