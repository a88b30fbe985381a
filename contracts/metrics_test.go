package contracts

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// gauge returns the value of the unlabelled gauge name in reg; it fails
// the test when reg has no such gauge.
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s in the registry", name)
	return 0
}

// TestRoomGauges: the registry a responder's metrics were made on shows
// what its Ledger reserves, has not received, and how many uploads are
// open, as reservations come and go.
func TestRoomGauges(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	prov := net.Host(0)
	st, err := OpenStore(t.TempDir())
	must(t, err)
	defer st.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	must(t, err)
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 1 << 40}}}
	l := NewLedger(dir, 1, func() (uint64, error) { return 1 << 30, nil }, WithReserveWindow(2<<20))
	r, err := NewResponder(prov, NewGossip(prov, nil, quiet()), Identity{Key: seedKey(t, 2), Worker: 1, Bucket: 1}, nil, l, st,
		WithLogger(quiet()), WithMetrics(m))
	must(t, err)
	defer r.Close()

	want := func(what string, reserved, pending, open float64) {
		t.Helper()
		got := [3]float64{gauge(t, reg, "satchel_contracts_reserved_bytes"), gauge(t, reg, "satchel_contracts_pending_bytes"),
			gauge(t, reg, "satchel_contracts_open_uploads")}
		if got != [3]float64{reserved, pending, open} {
			t.Errorf("%s: reserved, pending bytes and open uploads %v; want %v", what, got, [3]float64{reserved, pending, open})
		}
	}
	want("nothing reserved", 0, 0, 0)
	c, _, _ := fixedContract(t)
	c.Object, c.Size = 0, 5<<20
	ctx := context.Background()
	_, err = l.Reserve(ctx, c)
	must(t, err)
	want("one upload's first window", 2<<20, 2<<20, 1)
	must(t, l.Grow(ctx, c.ID, 2<<20, 2<<20))
	want("grown one window ahead of 2 MiB received", 4<<20, 2<<20, 1)
	l.Release(c.ID)
	want("bound", 0, 0, 0)
}
