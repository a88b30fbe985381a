package audit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/internal/debtbucket"
)

// Strangers (fresh peer IDs, no operator among them) sending more nonces
// than their replay table holds within the window are never refused for
// it, the table stays within its bound, and a known challenger's nonces
// are kept and answered as before. Before session 14 one node-wide table
// of 65,536 nonces (4 minutes each) refused every challenger, operators
// included, once strangers filled it, and each refusal scanned it all
// under the guard's lock.
func TestAuditStrangersCannotFillTheReplayTable(t *testing.T) {
	g := newGuard(DefaultRate, DefaultBurst, debtbucket.New(DefaultAnswerRate, DefaultAnswerBurst))
	now := time.Now() // frozen: every nonce stays live
	operator := randomPeer(t)
	first := nonce(t)
	if err := g.fresh(operator, false, first, now); err != nil {
		t.Fatal(err)
	}
	for i := range maxStrangerNonces + 3*DefaultBurst {
		p := peer.ID(fmt.Sprint("stranger", i/DefaultBurst))
		if err := g.fresh(p, true, nonce(t), now); err != nil {
			t.Fatalf("stranger challenge %d refused: %v", i, err)
		}
	}
	if n := g.strangers.len(); n != maxStrangerNonces {
		t.Fatalf("strangers' table holds %d nonces, want its bound %d", n, maxStrangerNonces)
	}
	if err := g.fresh(operator, false, nonce(t), now.Add(time.Second)); err != nil {
		t.Fatalf("a bucket operator's challenge after strangers filled their table: %v", err)
	}
	if err := g.fresh(operator, false, first, now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("the operator's first nonce again: %v, want ErrReplay", err)
	}
	last := peer.ID("stranger-last")
	n := nonce(t)
	if err := g.fresh(last, true, n, now); err != nil {
		t.Fatal(err)
	}
	if err := g.fresh(last, true, n, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("a stranger's latest nonce again: %v, want ErrReplay", err)
	}
}

// A replay table forgets nonces when they expire and, full of live ones,
// its oldest first; a nonce forgotten may be added again.
func TestAuditReplayTableBounded(t *testing.T) {
	tb := newReplayTable(3)
	now := time.Now()
	ttl := now.Add(time.Minute)
	for _, k := range []string{"a", "b", "c"} {
		if !tb.add(k, now, ttl) {
			t.Fatalf("%s refused", k)
		}
	}
	if tb.add("b", now, ttl) {
		t.Fatal("a live key was added again")
	}
	if !tb.add("d", now, ttl) || tb.len() != 3 || tb.seen("a", now) || !tb.seen("b", now) {
		t.Fatalf("full table: want the oldest (a) forgotten for d; %d kept, a seen %v", tb.len(), tb.seen("a", now))
	}
	if !tb.add("a", now, ttl) || tb.seen("b", now) {
		t.Fatal("a forgotten key was refused, or the next oldest kept")
	}
	later := ttl.Add(time.Second)
	if tb.seen("c", later) {
		t.Fatal("an expired key is still seen")
	}
	if !tb.add("c", later, later.Add(time.Minute)) || tb.len() != 1 {
		t.Fatalf("after expiry: c refused or %d keys kept, want 1", tb.len())
	}
	// Keys that live for different times: a short one behind a long one
	// is not seen once expired, and the table stays bounded.
	if !tb.add("x", later, later.Add(time.Hour)) || !tb.add("y", later, later.Add(time.Second)) {
		t.Fatal("refused")
	}
	if tb.seen("y", later.Add(2*time.Second)) || !tb.add("y", later.Add(2*time.Second), later.Add(time.Minute)) {
		t.Fatal("an expired key behind a live one was still seen")
	}
	if tb.len() > 3 {
		t.Fatalf("%d keys kept, over the bound 3", tb.len())
	}
}

func randomPeer(t *testing.T) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func nonce(t *testing.T) []byte {
	b := make([]byte, MinNonce)
	_, _ = rand.Read(b)
	return b
}

// BenchmarkAuditReplayTableFull adds strangers' nonces to a full table:
// each forgets the oldest (O(1); before session 14 a full table refused,
// after scanning all 65,536 entries under the guard's lock).
func BenchmarkAuditReplayTableFull(b *testing.B) {
	g := newGuard(DefaultRate, DefaultBurst, debtbucket.New(DefaultAnswerRate, DefaultAnswerBurst))
	now := time.Now()
	keys := make([][]byte, maxStrangerNonces+b.N)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "nonce-%016d", i)
	}
	for _, k := range keys[:maxStrangerNonces] {
		_ = g.fresh("stranger", true, k, now)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := g.fresh("stranger", true, keys[maxStrangerNonces+i], now); err != nil {
			b.Fatal(err)
		}
	}
}
