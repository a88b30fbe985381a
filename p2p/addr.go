package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseAddrInfo reads a peer ID and addresses as a node published them (in
// its operator metadata on chain, say). Addresses may be given with or
// without a trailing /p2p/<peer ID>; ones that name another peer or do not
// parse are skipped. A peer ID that does not parse is an error.
func ParseAddrInfo(peerID string, addrs []string) (peer.AddrInfo, error) {
	pid, err := peer.Decode(peerID)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("peer ID %q: %w", peerID, err)
	}
	ai := peer.AddrInfo{ID: pid}
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		transport, id := peer.SplitAddr(a)
		if transport == nil || (id != "" && id != pid) {
			continue
		}
		ai.Addrs = append(ai.Addrs, transport)
	}
	return ai, nil
}
