package state

import (
	"math/rand/v2"
	"testing"
)

// TestNonceWindowModel checks the bitmap against a set of used nonces.
func TestNonceWindowModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var n nonces
	used := map[uint64]bool{}
	for i := 0; i < 20000; i++ {
		var v uint64
		switch r.IntN(4) {
		case 0:
			v = n.max + 1 + uint64(r.IntN(100))
		default:
			v = n.max - uint64(min(int(n.max), r.IntN(80)))
		}
		want := !used[v] && (v > n.max || n.max-v <= NonceWindow) && v != 0
		got := n.check("a", v) == nil
		if got != want {
			t.Fatalf("step %d: check(%d) with max %d = %v; want %v", i, v, n.max, got, want)
		}
		if got {
			n = n.use(v)
			used[v] = true
		}
	}
}
