package distributor

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The measurements kept are bounded however many peer IDs fail: each
// fresh ID a DHT names would otherwise add one for good. A provider in
// use stays, and the status lists it first, at most maxStatusSources.
func TestSourceStatsBounded(t *testing.T) {
	s := newSources(nil, nil, nil)
	real := peer.ID("the operator")
	for i := range 3 * maxSourceStats {
		s.fail(peer.ID(fmt.Sprintf("fresh ID %d", i)))
		if i%100 == 0 {
			s.observe(real, 1<<10, time.Millisecond)
		}
	}
	if n := s.stats.Len(); n > maxSourceStats {
		t.Fatalf("%d providers' measurements kept, more than %d", n, maxSourceStats)
	}
	st := s.status()
	if len(st) != maxStatusSources {
		t.Fatalf("the status lists %d providers; want %d", len(st), maxStatusSources)
	}
	if st[0].Peer != real.String() || st[0].Fetches == 0 {
		t.Fatalf("the provider in use is not first in the status: %+v", st[0])
	}
}
