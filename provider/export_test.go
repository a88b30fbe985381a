package provider

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
)

// LookUpChainPeers empties the node's cached peers of bag and looks them
// up again as an audit round does (chainPeers: the chain, then the DHT,
// then the cache), returning the peer IDs found.
func (s *Server) LookUpChainPeers(ctx context.Context, bag chain.BagID) ([]peer.ID, error) {
	s.peers.invalidate(bag)
	ps, err := s.peers.chainPeers(ctx, bag)
	ids := make([]peer.ID, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids, err
}
