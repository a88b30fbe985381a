package audit

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PoC (secreview, session 14): FAILS on main by design.
//
// The replay table (guard.nonces) is one node-wide map of maxReplayEntries
// (65,536) entries, each kept 2×ClockWindow (4 min), shared by every
// challenger. Fresh peer IDs each get DefaultBurst challenges at once; a
// challenge of an object the provider does not hold (any bag, any valid
// root) is answered NOT_FOUND after one manifest look-up, charging nothing
// to the strangers' byte share. Once the table holds 65,536 live entries
// (273 challenges a second for 4 minutes: ~28 fresh IDs' bursts then ~550
// IDs at 0.5/s; TestPoCStrangerNotFoundCostsNothing measures the pace)
// every challenge of every challenger — bucket operators included — is
// refused "too many recent challenges" until entries age out, and each
// refusal first scans the whole map under the guard's lock.
//
// The property asserted is the fix: strangers cannot take a known
// challenger's replay entries (per-class or per-challenger bounded tables,
// or recording the nonce only after the byte share is charged a minimum).
func TestPoCReplayTableFilledByStrangers(t *testing.T) {
	g := newGuard(DefaultRate, DefaultBurst, newBudget(DefaultAnswerRate, DefaultAnswerBurst))
	now := time.Now()
	sybils := maxReplayEntries / DefaultBurst
	start := time.Now()
	for range sybils + 1 {
		p := randomPeer(t)
		for range DefaultBurst {
			release, err := g.admit(p, now)
			if err != nil {
				t.Fatalf("a fresh peer's burst: %v", err)
			}
			_ = g.fresh(p, nonce(t), now)
			release()
		}
	}
	fill := time.Since(start)
	operator := randomPeer(t)
	release, err := g.admit(operator, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start = time.Now()
	err = g.fresh(operator, nonce(t), now.Add(time.Second))
	t.Logf("%d fresh peer IDs × %d challenges filled the replay table (%d entries, %v in-process); an operator's challenge then: %v (took %v: a full scan)",
		sybils+1, DefaultBurst, len(g.nonces), fill, err, time.Since(start))
	if errors.Is(err, ErrRefused) {
		t.Errorf("a bucket operator's challenge is refused for 4 minutes after strangers filled the replay table: %v", err)
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
