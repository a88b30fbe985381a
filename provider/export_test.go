package provider

import (
	"context"
	"fmt"

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

// ConfirmPossession asks p to prove it holds object obj, which this node
// holds, as a cleanup of a moved bag does.
func (s *Server) ConfirmPossession(ctx context.Context, p peer.ID, obj chain.ObjectID) (bool, error) {
	blocks, ok := s.holdings.blocksOf(uint64(obj))
	m, found, err := s.bs.Manifest(uint64(obj))
	if !ok || !found || err != nil {
		return false, fmt.Errorf("object %d is not held here: %v", obj, err)
	}
	return s.confirmPossession(ctx, p, m, blocks)
}

// RecordPriority reports whether the node's DHT keeps p's provider records
// first: the rule the node installs on its host, called as the DHT calls
// it.
func (s *Server) RecordPriority(p peer.ID) bool {
	return s.priority != nil && s.priority.Is(p)
}
