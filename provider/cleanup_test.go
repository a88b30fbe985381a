package provider

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer ID running several of a bag's buckets is one copy: cleanup asks it
// once, and never asks this node.
func TestConfirmingPeers(t *testing.T) {
	self, a, b := peer.ID("self"), peer.ID("a"), peer.ID("b")
	got := confirmingPeers([]chainPeer{{ID: a, Bucket: 1}, {ID: self, Bucket: 2}, {ID: a, Bucket: 3}, {ID: b, Bucket: 4}, {ID: "", Bucket: 5}}, self)
	ids := make([]peer.ID, len(got))
	for i, p := range got {
		ids[i] = p.ID
	}
	if !slices.Equal(ids, []peer.ID{a, b}) {
		t.Fatalf("confirmingPeers = %v, want [a b]", ids)
	}
}
