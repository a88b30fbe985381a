package fetch

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
)

// The scope a reservation error names decides who is told to act: a shared
// scope (every peer's) makes the reply busy, a reader's own does not. Which
// scopes are which is p2p.BudgetScope's (TestBudgetScope).
func TestBudgetRefusalScopes(t *testing.T) {
	for _, tc := range []struct {
		scope string
		busy  bool
	}{
		{"protocol:/satchel/fetch/1.0.0", true},
		{"protocol:/satchel/fetch/1.0.0.peer:12D3KooWL8wnsgzB", false},
	} {
		inner := fmt.Errorf("stream-9: %w", fmt.Errorf("%s: %w", tc.scope, network.ErrResourceLimitExceeded))
		err := fmt.Errorf("%w: 2162432 bytes for a stream: %w", p2p.ErrMemoryBudget, inner)
		if r := budgetRefusal(err); r.Busy != tc.busy {
			t.Errorf("%s: busy = %v (%s), want %v", tc.scope, r.Busy, r.Reason, tc.busy)
		}
	}
	if r := budgetRefusal(fmt.Errorf("%w: scope closed", p2p.ErrMemoryBudget)); r.Busy {
		t.Errorf("an error naming no scope is answered busy: %s", r.Reason)
	}
}

// A peer's verification bucket refills at its rate up to its burst, goes
// below zero by one hold at most (a hold taken before a read, the unused
// part refunded after), and is forgotten once full again, so the record of
// peers stays bounded; a new peer is refused only while the record is full
// of peers still refilling.
func TestVerifyBudgetBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVerifyBudget(1<<20, 4<<20, 0, 1<<40) // the node's bucket never in the way
	v.now = func() time.Time { return now }
	p := peer.ID("reader")
	if v.take(p, 3<<20) != budgetTaken {
		t.Fatal("a new peer is refused")
	}
	if v.take(p, 2<<20) != budgetTaken { // 1 MiB left: taken, -1 MiB
		t.Fatal("refused with 1 MiB left")
	}
	if v.take(p, 1) == budgetTaken {
		t.Fatal("a hold taken below zero: concurrent reads would pass on the same tokens")
	}
	v.refund(p, 2<<20) // the read cost nothing beyond what it sent: +1 MiB
	if v.take(p, 1<<20) != budgetTaken {
		t.Fatal("refused after a refund")
	}
	now = now.Add(1500 * time.Millisecond) // +1.5 MiB from 0
	if v.take(p, 0) != budgetTaken {
		t.Fatal("refused after refilling")
	}
	for i := range maxBudgetPeers - 1 {
		v.take(peer.ID(fmt.Sprint("peer", i)), 1)
	}
	if v.take("newcomer", 1) == budgetTaken {
		t.Fatal("a newcomer is allowed while the record is full of peers refilling")
	}
	now = now.Add(time.Minute) // every bucket full again
	if v.take("newcomer", 0) != budgetTaken {
		t.Fatal("a newcomer is refused once the buckets refilled")
	}
	if n := len(v.peers); n != 1 {
		t.Fatalf("%d buckets recorded; want the newcomer's alone", n)
	}
}

// The node's bucket stands behind every peer's: fresh peers, each within
// its own budget, are refused once the node's is spent (and take nothing
// from their own then); refunds go back to both.
func TestVerifyBudgetNodeBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVerifyBudget(0, 8<<20, 0, 8<<20)
	v.now = func() time.Time { return now }
	if got := v.take("a", 4<<20); got != budgetTaken {
		t.Fatalf("first peer: %v", got)
	}
	if got := v.take("b", 4<<20); got != budgetTaken {
		t.Fatalf("second peer: %v", got)
	}
	if got := v.take("c", 4<<20); got != budgetNodeSpent {
		t.Fatalf("third fresh peer with the node's budget spent: %v, want the node's refusal", got)
	}
	if tokens := v.peers["c"].Tokens(now); tokens != 8<<20 {
		t.Fatalf("a GET the node refused took %v from its peer's bucket", tokens)
	}
	v.refund("a", 3<<20) // a's read cost 1 MiB
	if got := v.take("c", 4<<20); got != budgetTaken {
		t.Fatalf("after a refund: %v", got)
	}
	if tokens := v.peers["a"].Tokens(now); tokens != 7<<20 {
		t.Fatalf("peer a's bucket %v after its refund, want 7 MiB", tokens)
	}
}

// A GET resets a stalled stream only for a budget that resetting a fetch
// stream gives memory back to: the fetch protocol's or the node's.
func TestEvictionScopes(t *testing.T) {
	for _, tc := range []struct {
		scope string
		frees bool
	}{
		{"protocol:/satchel/fetch/1.0.0", true},
		{"system", true},
		{"transient", false},
		{"protocol:/satchel/store/1.0.0", false},
		{"protocol:/satchel/fetch/1.0.0.peer:12D3KooWL8wnsgzB", false},
		{"stream-9", false},
	} {
		inner := fmt.Errorf("stream-9: %w", fmt.Errorf("%s: %w", tc.scope, network.ErrResourceLimitExceeded))
		if tc.scope == "stream-9" {
			inner = fmt.Errorf("stream-9: %w", network.ErrResourceLimitExceeded)
		}
		err := fmt.Errorf("%w: 2162432 bytes for a stream: %w", p2p.ErrMemoryBudget, inner)
		if got := fetchFrees(err); got != tc.frees {
			t.Errorf("%s: resets a stalled stream %v, want %v", tc.scope, got, tc.frees)
		}
	}
}
