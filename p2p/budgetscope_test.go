package p2p_test

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/p2p"
)

// BudgetScope names the scope a reservation error reports reached and
// whether every peer shares it. The errors are shaped as libp2p's resource
// manager and p2p.Reserve wrap them.
func TestBudgetScope(t *testing.T) {
	cases := []struct {
		scope  string
		shared bool
	}{
		{"system", true},
		{"transient", true},
		{"protocol:/satchel/store/1.0.0", true},
		{"service:satchel", true},
		{"stream-9", false},
		{"peer:12D3KooWL8wnsgzB", false},
		{"protocol:/satchel/store/1.0.0.peer:12D3KooWL8wnsgzB", false},
		{"conn-3", false},
	}
	for _, tc := range cases {
		inner := fmt.Errorf("%s: %w", tc.scope, network.ErrResourceLimitExceeded)
		if tc.scope != "stream-9" {
			inner = fmt.Errorf("stream-9: %w", inner)
		}
		err := fmt.Errorf("%w: 2162432 bytes for a stream: %w", p2p.ErrMemoryBudget, inner)
		if scope, shared := p2p.BudgetScope(err); scope != tc.scope || shared != tc.shared {
			t.Errorf("BudgetScope = %q, %v; want %q, %v", scope, shared, tc.scope, tc.shared)
		}
	}
	if scope, shared := p2p.BudgetScope(fmt.Errorf("%w: scope closed", p2p.ErrMemoryBudget)); scope != "" || shared {
		t.Errorf("an error naming no scope: %q, %v; want none, not shared", scope, shared)
	}
}
