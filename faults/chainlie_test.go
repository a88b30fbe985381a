package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/provider"
)

// TestChainLying points one provider at a chain endpoint stuck at a height
// from before the uploads — every object answers not found, the object
// lists come back empty and the height stays — for several full reconcile
// passes. The promise: no data is deleted on a not-found alone; deletion
// follows the chain's deletion event or an absence confirmed by an endpoint
// at least at the height the node has followed (provider/tombstones.go).
// The network removes a confirmed absence at once (no deletion grace), so
// the height check alone stands between the lie and the data.
func TestChainLying(t *testing.T) {
	net := newFaultyNet(t, provider.WithReconcileInterval(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(5, uint64(time.Now().UnixNano())))
	f := figures{Scenario: "chain RPC lying (not found, stale height)"}
	before, err := net.Client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
	after, err := net.Client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := r.IntN(3)
	p := net.Provider(victim)
	// The promise is about what the provider holds, at a height it has
	// followed: the lie starts once it holds (and serves) every acknowledged
	// object and has followed the chain past their registration.
	if _, ok := waitFor(time.Minute, func() bool {
		for _, o := range acked {
			if !p.Holds(o.obj.ID) {
				return false
			}
		}
		return p.Server().Status().ChainHeight >= after.Height
	}); !ok {
		t.Fatalf("provider %d did not come to hold the %d acknowledged objects and follow the chain to height %d on an honest chain", victim, len(acked), after.Height)
	}
	counter := func(name string) float64 {
		v, _ := metricsutil.Counter(p.Registry(), name)
		return v
	}
	start := counter("satchel_provider_reconciles_total")
	net.chains[victim].lie(before.Height)
	if _, ok := waitFor(time.Minute, func() bool { return counter("satchel_provider_reconciles_total") >= start+3 }); !ok {
		t.Fatal("the provider ran no reconcile passes while its chain lied")
	}
	for _, o := range acked {
		if !p.Holds(o.obj.ID) {
			f.Lost++
		}
	}
	refused := counter("satchel_provider_deletions_unconfirmed_total")
	net.chains[victim].set(chainOK)
	if f.Lost > 0 {
		t.Fatalf("provider %d deleted %d of %d acknowledged objects on a lying chain RPC's not-found", victim, f.Lost, len(acked))
	}
	if refused == 0 {
		t.Fatal("the provider never weighed the lie's missing objects: no deletion was refused")
	}
	f.Note = "3 reconcile passes on a lying RPC"
	report(t, f)
}
