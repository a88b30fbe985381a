package fetch

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer's abandonment bucket: a peer never charged is neither spent nor
// owing; charges go down to minus the burst and no further; the bucket is
// spent at zero and owing while more than half a 4 MiB burst (or
// MaxGetBytes of a larger one) short of full; the record stays
// bounded, dropping charges only while it is full of peers still refilling.
func TestAbandonBudgetBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAbandonBudget(1<<20, 4<<20)
	a.now = func() time.Time { return now }
	p := peer.ID("reader")
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("a new peer: spent %v, owing %v", spent, owing)
	}
	a.charge(p, 2<<20)
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("2 MiB of 4 abandoned: spent %v, owing %v; want neither", spent, owing)
	}
	a.charge(p, 1)
	if spent, owing := a.state(p); spent || !owing {
		t.Fatalf("2 MiB and a byte of 4 abandoned: spent %v, owing %v; want owing only", spent, owing)
	}
	a.charge(p, 64<<20) // down to -4 MiB, no further
	if spent, _ := a.state(p); !spent {
		t.Fatal("not spent past its burst")
	}
	now = now.Add(4*time.Second + time.Millisecond) // -4 MiB + 4 MiB
	if spent, owing := a.state(p); spent || !owing {
		t.Fatalf("refilled to zero and a little: spent %v, owing %v; want owing only (the floor is minus the burst)", spent, owing)
	}
	now = now.Add(2 * time.Second)
	if spent, owing := a.state(p); spent || owing {
		t.Fatalf("refilled to half: spent %v, owing %v", spent, owing)
	}
	big := newAbandonBudget(0, 64<<20)
	big.now = a.now
	big.charge(p, MaxGetBytes)
	if _, owing := big.state(p); owing {
		t.Fatal("owing after abandoning MaxGetBytes of a 64 MiB burst")
	}
	big.charge(p, 1)
	if _, owing := big.state(p); !owing {
		t.Fatal("not owing after abandoning more than MaxGetBytes of a 64 MiB burst")
	}
	now = now.Add(2 * time.Second) // full
	for i := range maxBudgetPeers {
		a.charge(peer.ID(fmt.Sprint("peer", i)), 1<<20)
	}
	a.charge("newcomer", 8<<20)
	if _, owing := a.state("newcomer"); owing {
		t.Fatal("a charge recorded while the record is full of peers refilling")
	}
	now = now.Add(time.Minute) // every bucket full again
	a.charge("newcomer", 8<<20)
	if spent, _ := a.state("newcomer"); !spent {
		t.Fatal("a newcomer's charge dropped once the buckets refilled")
	}
	if n := len(a.peers); n != 1 {
		t.Fatalf("%d buckets recorded; want the newcomer's alone", n)
	}
}
