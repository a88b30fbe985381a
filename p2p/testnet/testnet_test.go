package testnet

import (
	"slices"
	"testing"
)

func TestEdges(t *testing.T) {
	tests := []struct {
		topology Topology
		n        int
		want     [][2]int
	}{
		{Ring, 1, nil},
		{Ring, 2, [][2]int{{0, 1}}},
		{Ring, 4, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 0}}},
		{Star, 1, nil},
		{Star, 4, [][2]int{{0, 1}, {0, 2}, {0, 3}}},
	}
	for _, tt := range tests {
		if got := edges(tt.topology, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("edges(%v, %d) = %v, want %v", tt.topology, tt.n, got, tt.want)
		}
	}
}

// A ring of mock hosts ends up with full routing tables, each host knowing
// every other, and a single host needs no setup at all.
func TestNewMockRing(t *testing.T) {
	net := NewMock(t, 6, 0)
	net.WaitRoutingTables(5)
	if got := len(net.Peers()); got != 6 {
		t.Fatalf("%d peers, want 6", got)
	}
	one := NewMock(t, 1, 0)
	if one.Len() != 1 || one.Host(0).DHT().RoutingTable().Size() != 0 {
		t.Fatal("a one-host network is not alone")
	}
}
