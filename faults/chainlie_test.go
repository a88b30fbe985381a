package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/provider"
)

// TestChainLying makes one provider's chain RPC lie — every object answers
// not found and the height stops — for several full reconcile passes. The
// promise: no data is deleted on a not-found alone; deletion follows the
// chain's deletion event or a confirmed absence at a verified height after a
// grace period (provider/tombstones.go).
func TestChainLying(t *testing.T) {
	net := newFaultyNet(t, provider.WithReconcileInterval(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(5, uint64(time.Now().UnixNano())))
	f := figures{Scenario: "chain RPC lying (not found, stale height)"}
	var acked []object
	for range pick(2, 10) {
		o, err := upload(ctx, net.Network, randData(r, 512<<10), 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		f.Attempted++
		acked = append(acked, o)
	}
	f.Acknowledged = len(acked)
	victim := r.IntN(3)
	p := net.Provider(victim)
	// The promise is about what the provider holds: the lie starts once it
	// holds (and serves) every acknowledged object, so an object it had not
	// yet taken up when its chain began to lie is not counted as deleted.
	if _, ok := waitFor(time.Minute, func() bool {
		for _, o := range acked {
			if !p.Holds(o.obj.ID) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("provider %d did not come to hold the %d acknowledged objects on an honest chain", victim, len(acked))
	}
	passes := func() float64 {
		v, _ := metricsutil.Counter(p.Registry(), "satchel_provider_reconciles_total")
		return v
	}
	start := passes()
	net.chains[victim].set(ctx, chainLying)
	if _, ok := waitFor(time.Minute, func() bool { return passes() >= start+3 }); !ok {
		t.Fatal("the provider ran no reconcile passes while its chain lied")
	}
	for _, o := range acked {
		if !p.Holds(o.obj.ID) {
			f.Lost++
		}
	}
	net.chains[victim].set(ctx, chainOK)
	if f.Lost > 0 {
		t.Fatalf("provider %d deleted %d of %d acknowledged objects on a lying chain RPC's not-found", victim, f.Lost, len(acked))
	}
	f.Note = "3 reconcile passes on a lying RPC"
	report(t, f)
}
