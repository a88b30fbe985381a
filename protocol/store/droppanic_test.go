package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
)

// panickyDropAuth is spAuth whose AuthorizeDrop panics for one session.
type panickyDropAuth struct {
	*spAuth
	panicOn []byte
}

func (a panickyDropAuth) AuthorizeDrop(_ context.Context, _ string, session []byte, _ peer.ID) error {
	if bytes.Equal(session, a.panicOn) {
		panic("panickyDropAuth: asked to panic")
	}
	return nil
}

// DROPs are counted as DROPs (drops_total), not as BINDs: one whose worker
// panics is a failed DROP, not a failed bind, and a DROP that ends its
// session is dropped.
func TestDropCountedApartFromBinds(t *testing.T) {
	net := testnet.New(t, 2)
	bad := bytes.Repeat([]byte{6}, store.SessionIDLength)
	auth := panickyDropAuth{spAuth: &spAuth{objects: map[uint64]spObject{}, quota: 1 << 30}, panicOn: bad}
	reg := prometheus.NewRegistry()
	serveStore(t, net, 1, auth, store.WithMetrics(reg))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, err := store.Open(ctx, net.Host(0).Libp2p(), net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Drop(ctx, bad, spBag); err == nil {
		t.Fatal("a DROP whose worker panicked succeeded")
	}
	// The FAILED answer is counted off the stream's goroutine: wait for it.
	dropFailed := func() bool { return spCounter(t, reg, "satchel_provider_store_drops_total", "result", "failed") == 1 }
	if err := ctxsleep.Poll(ctx, dropFailed); err != nil {
		t.Fatalf("the panicked DROP was not counted as a failed DROP: drops_total{failed} = %v",
			spCounter(t, reg, "satchel_provider_store_drops_total", "result", "failed"))
	}
	if n := spCounter(t, reg, "satchel_provider_store_binds_total"); n != 0 {
		t.Fatalf("binds_total = %v after DROPs only; want 0", n)
	}

	s2, err := store.Open(ctx, net.Host(0).Libp2p(), net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Drop(ctx, bytes.Repeat([]byte{7}, store.SessionIDLength), spBag); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if n := spCounter(t, reg, "satchel_provider_store_drops_total", "result", "dropped"); n != 1 {
		t.Fatalf("drops_total{dropped} = %v; want 1", n)
	}
	if n := spCounter(t, reg, "satchel_provider_store_binds_total"); n != 0 {
		t.Fatalf("binds_total = %v after DROPs only; want 0", n)
	}
}
