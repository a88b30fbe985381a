package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/internal/debtbucket"
)

// A busy challenger stays limited however many other challengers come
// along: its limiter is the most recently used, never the one dropped.
func TestAuditGuardKeepsLimitingBusyChallenger(t *testing.T) {
	g := newGuard(DefaultRate, DefaultBurst, debtbucket.New(DefaultAnswerRate, DefaultAnswerBurst))
	now := time.Now() // frozen: no bucket refills during the test
	busy := peer.ID("busy")
	admit := func(p peer.ID) bool {
		release, err := g.admit(p, now)
		if err != nil {
			return false
		}
		release()
		return true
	}
	for range DefaultBurst {
		if !admit(busy) {
			t.Fatal("a fresh challenger was refused within its burst")
		}
	}
	more := 0
	for i := range 3 * maxChallengers {
		if !admit(peer.ID(fmt.Sprint("other", i))) {
			t.Fatalf("fresh challenger %d refused", i)
		}
		if i%16 == 0 && admit(busy) {
			more++
		}
	}
	if more != 0 {
		t.Fatalf("the busy challenger got %d more challenges in while %d others came along", more, 3*maxChallengers)
	}
	if n := g.limits.Len(); n > maxChallengers {
		t.Fatalf("%d limiters kept, over the bound of %d", n, maxChallengers)
	}
}
