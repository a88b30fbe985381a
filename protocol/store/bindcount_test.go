package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/satchel-net/satchel/protocol/store"
)

// A BIND refused for its size is counted once in binds_total, as
// size_mismatch, not also as refused; one refused for another reason (the
// object not registered) counts as refused only. The count is made before
// the reply is sent, so it is read as soon as the BIND returns.
func TestBindSizeMismatchCountedOnce(t *testing.T) {
	e := newSPEnv(t)
	ctx := context.Background()
	data := spRand(12, 200_000)
	res := e.spObjectData(t, 1, data, 64<<10)
	e.auth.register(1, spBag, res.Root, 1)
	s := e.open(t)
	for i := range res.Chunks {
		if _, err := s.Push(ctx, spPush(t, res, data, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	binds := func(result string) float64 {
		return spCounter(t, e.reg, "satchel_provider_store_binds_total", "result", result)
	}
	var re *store.RefusedError
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); !errors.As(err, &re) {
		t.Fatalf("bind of %d bytes registered as 1: %v; want a refusal", res.Size, err)
	}
	if got := binds("size_mismatch"); got != 1 {
		t.Errorf("binds_total{size_mismatch} = %v after one mismatched BIND; want 1", got)
	}
	if got := binds("refused"); got != 0 {
		t.Errorf("binds_total{refused} = %v after one mismatched BIND; want 0: it is counted once", got)
	}
	if got := spCounter(t, e.reg, "satchel_provider_store_binds_total"); got != 1 {
		t.Errorf("binds_total = %v over all results after one BIND; want 1", got)
	}
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 2, Chunks: res.Chunks}); !errors.As(err, &re) {
		t.Fatalf("bind of an unregistered object: %v; want a refusal", err)
	}
	if got, mm := binds("refused"), binds("size_mismatch"); got != 1 || mm != 1 {
		t.Errorf("after a BIND of an unregistered object binds_total{refused} = %v, {size_mismatch} = %v; want 1, 1", got, mm)
	}
}
