package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
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

// sizeUnreadableAuth is spAuth whose ObjectSize fails while err is set:
// the chain read of the registered size failed, or its look-ups were all
// taken (busy). AuthorizeChunk still answers.
type sizeUnreadableAuth struct {
	*spAuth
	mu  sync.Mutex
	err error
}

func (a *sizeUnreadableAuth) ObjectSize(ctx context.Context, bag string, object uint64) (uint64, error) {
	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return a.spAuth.ObjectSize(ctx, bag, object)
}

func (a *sizeUnreadableAuth) set(err error) {
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

// A BIND authorized, whose chunk list builds the object's root, but whose
// registered size could not be read (checkBindSize), is refused and
// counted once, as refused, not as a size mismatch: busy when the
// provider's chain look-ups were all taken, so the uploader asks again.
// Nothing is recorded: once the size reads, the same BIND binds.
func TestBindSizeUnreadableRefusedOnly(t *testing.T) {
	net := testnet.New(t, 2)
	auth := &sizeUnreadableAuth{spAuth: &spAuth{objects: map[uint64]spObject{}, quota: 1 << 30}}
	reg := prometheus.NewRegistry()
	serveStore(t, net, 1, auth, store.WithMetrics(reg))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, net.Host(0).Libp2p(), net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	data := spRand(13, 200_000)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	auth.register(1, spBag, res.Root, uint64(res.Size))
	for i := range res.Chunks {
		if _, err := s.Push(ctx, spPush(t, res, data, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	binds := func(result string) float64 {
		return spCounter(t, reg, "satchel_provider_store_binds_total", "result", result)
	}
	bind := store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}
	for i, tc := range []struct {
		name string
		err  error
		busy bool
	}{
		{"read failed", errors.New("chain query failed: connection refused"), false},
		{"busy", fmt.Errorf("chain look-ups all taken: %w", store.ErrProviderBusy), true},
	} {
		auth.set(tc.err)
		err := s.Bind(ctx, bind)
		var re *store.RefusedError
		if !errors.As(err, &re) || re.Status != pb.Status_STATUS_REFUSED {
			t.Fatalf("%s: bind with the size unreadable: %v; want a refusal", tc.name, err)
		}
		if busy := errors.Is(err, store.ErrProviderBusy); busy != tc.busy {
			t.Errorf("%s: refusal %v matches ErrProviderBusy: %v; want %v", tc.name, err, busy, tc.busy)
		}
		if got, mm := binds("refused"), binds("size_mismatch"); got != float64(i+1) || mm != 0 {
			t.Errorf("%s: binds_total{refused} = %v, {size_mismatch} = %v; want %d, 0", tc.name, got, mm, i+1)
		}
		if got := spCounter(t, reg, "satchel_provider_store_binds_total"); got != float64(i+1) {
			t.Errorf("%s: binds_total = %v over all results after %d BINDs; want %d: each counted once", tc.name, got, i+1, i+1)
		}
	}
	auth.set(nil)
	if err := s.Bind(ctx, bind); err != nil {
		t.Fatalf("bind once the size reads: %v", err)
	}
	if got := binds("bound"); got != 1 {
		t.Errorf("binds_total{bound} = %v; want 1", got)
	}
}
