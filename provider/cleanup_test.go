package provider

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// An operator running several of a bag's buckets is one copy: cleanup asks
// and counts it once, and never counts this node.
func TestDistinctPeers(t *testing.T) {
	self, a, b := peer.ID("self"), peer.ID("a"), peer.ID("b")
	got := distinctPeers([]chainPeer{{ID: a, Bucket: 1}, {ID: self, Bucket: 2}, {ID: a, Bucket: 3}, {ID: b, Bucket: 4}, {ID: "", Bucket: 5}}, self)
	if !slices.Equal(got, []peer.ID{a, b}) {
		t.Fatalf("distinctPeers = %v, want [a b]", got)
	}
}
