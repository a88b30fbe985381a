package fetch

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
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
// part refunded after).
func TestVerifyBudgetBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVerifyBudget(1<<20, 4<<20, 0, 1<<40) // the node's bucket never in the way
	v.now = func() time.Time { return now }
	p := peer.ID("reader")
	if got, _ := v.take(p, 3<<20); got != budgetTaken {
		t.Fatal("a new peer is refused")
	}
	got, hold := v.take(p, 2<<20) // 1 MiB left: taken, -1 MiB
	if got != budgetTaken {
		t.Fatal("refused with 1 MiB left")
	}
	if got, _ := v.take(p, 1); got == budgetTaken {
		t.Fatal("a hold taken below zero: concurrent reads would pass on the same tokens")
	}
	v.refund(hold, 2<<20) // the read cost nothing beyond what it sent: +1 MiB
	if got, _ := v.take(p, 1<<20); got != budgetTaken {
		t.Fatal("refused after a refund")
	}
	now = now.Add(1500 * time.Millisecond) // +1.5 MiB from 0
	if got, _ := v.take(p, 0); got != budgetTaken {
		t.Fatal("refused after refilling")
	}
}

// The record of peers stays bounded, and a full one refuses no newcomer
// for being full: while it is full of peers still refilling (each holding
// a byte), a newcomer's GETs draw on its overflow bucket, which binds it
// and the newcomers of its slot once spent (and gets its refunds), while
// the newcomers of other slots are served; once the buckets have refilled
// they are forgotten and a newcomer gets one of its own. Every newcomer
// was refused while the record was full.
func TestVerifyBudgetOverflow(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVerifyBudget(1<<20, 4<<20, 0, 1<<40)
	v.now = func() time.Time { return now }
	for i := range maxBudgetPeers {
		v.take(peer.ID(fmt.Sprint("peer", i)), 1)
	}
	got, hold := v.take("newcomer", 8<<20) // its overflow bucket: -4 MiB
	if got != budgetTaken {
		t.Fatalf("a newcomer while the record is full of peers refilling: %v, want taken", got)
	}
	slot := v.peers.slot("newcomer")
	for i, other := 0, 0; other < 2; i++ {
		p := peer.ID(fmt.Sprint("other", i))
		got, _ := v.take(p, 0)
		if shared := v.peers.slot(p) == slot; shared != (got == budgetOverflowSpent) {
			t.Fatalf("newcomer %s sharing the spent overflow bucket %v: %v", p, shared, got)
		} else if !shared {
			other++
		}
	}
	v.refund(hold, 8<<20) // the read cost nothing: back to 4 MiB
	if got, _ := v.take("newcomer", 1); got != budgetTaken {
		t.Fatalf("the newcomer after its refund: %v", got)
	}
	if n := len(v.peers.m); n != maxBudgetPeers {
		t.Fatalf("%d buckets recorded; want the record's bound, %d", n, maxBudgetPeers)
	}
	now = now.Add(time.Minute) // every bucket full again
	if got, _ := v.take("newcomer", 0); got != budgetTaken {
		t.Fatal("a newcomer is refused once the buckets refilled")
	}
	if n := len(v.peers.m); n != 1 {
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
	got, a := v.take("a", 4<<20)
	if got != budgetTaken {
		t.Fatalf("first peer: %v", got)
	}
	if got, _ := v.take("b", 4<<20); got != budgetTaken {
		t.Fatalf("second peer: %v", got)
	}
	if got, _ := v.take("c", 4<<20); got != budgetNodeSpent {
		t.Fatalf("third fresh peer with the node's budget spent: %v, want the node's refusal", got)
	}
	if tokens := v.peers.m["c"].Tokens(now); tokens != 8<<20 {
		t.Fatalf("a GET the node refused took %v from its peer's bucket", tokens)
	}
	v.refund(a, 3<<20) // a's read cost 1 MiB
	if got, _ := v.take("c", 4<<20); got != budgetTaken {
		t.Fatalf("after a refund: %v", got)
	}
	if tokens := v.peers.m["a"].Tokens(now); tokens != 7<<20 {
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

// A ranged GET refused because the overflow bucket its peer shares with
// others is spent is told so, busy, and counted as such: the budget spent
// is not the peer's own. One refused by its own bucket is not busy.
func TestVerifyOverflowRefusalBusy(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHandler(nil, servesAll{}, WithLogger(slog.New(slog.DiscardHandler)))
	defer h.Close()
	h.budget = newVerifyBudget(1<<20, 4<<20, 0, 1<<40)
	h.budget.now = func() time.Time { return now }
	for i := range maxBudgetPeers {
		h.budget.take(peer.ID(fmt.Sprint("peer", i)), 1)
	}
	c := chunker.ChunkCID([]byte("block"))
	if _, refusal := h.takeVerify("newcomer", c); refusal != nil { // its overflow bucket: 4 of 4 MiB held
		t.Fatalf("a newcomer's first ranged GET: %v", refusal.Reason)
	}
	_, refusal := h.takeVerify("newcomer", c)
	if refusal == nil || !refusal.Busy || strings.Contains(refusal.Reason, "this peer's budget") ||
		!strings.Contains(refusal.Reason, "shares with other peers") {
		t.Fatalf("a GET whose overflow bucket is spent: %+v, want busy, naming the shared budget", refusal)
	}
	h.budget.take("peer0", 8<<20)
	if _, refusal := h.takeVerify("peer0", c); refusal == nil || refusal.Busy || !strings.Contains(refusal.Reason, "this peer's budget") {
		t.Fatalf("a GET whose own bucket is spent: %+v, want not busy, naming its own budget", refusal)
	}
}
