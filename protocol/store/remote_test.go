package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/store"
)

// The Authorizer learns which peer asks (store.RemotePeer), so it can bound
// what one peer makes it do.
func TestAuthorizerSeesRemotePeer(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(7, 256<<10)
	res := e.spObjectData(t, 1, data, 128<<10)
	if _, err := e.open(t).Push(ctx, spPush(t, res, data, 1, 0)); err != nil {
		t.Fatal(err)
	}
	e.auth.mu.Lock()
	defer e.auth.mu.Unlock()
	if n := e.auth.askers[e.client.ID()]; n != 1 || len(e.auth.askers) != 1 {
		t.Fatalf("AuthorizeChunk was asked for %v; want once for the uploader %s", e.auth.askers, e.client.ID())
	}
}

// An Authorizer error matching ErrProviderBusy reaches the uploader as a
// busy refusal (it waits and asks again); any other refusal is not busy.
func TestAuthorizerBusyRefusal(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(8, 128<<10)
	res := e.spObjectData(t, 1, data, 128<<10)
	e.auth.mu.Lock()
	e.auth.busyObj = 1
	e.auth.mu.Unlock()
	s := e.open(t)
	_, err := s.Push(ctx, spPush(t, res, data, 1, 0))
	var refused *store.RefusedError
	if !errors.As(err, &refused) || !refused.Busy || !errors.Is(err, store.ErrProviderBusy) || !strings.Contains(refused.Reason, "chain look-ups all taken") {
		t.Fatalf("push while the authorizer is busy = %v; want a busy refusal with its reason", err)
	}
	// A BIND's look-up is refused busy the same way, so the uploader asks
	// again instead of counting a failure.
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); !errors.As(err, &refused) || !errors.Is(err, store.ErrProviderBusy) {
		t.Fatalf("bind while the authorizer is busy = %v; want a busy refusal", err)
	}
	unregistered := spPush(t, res, data, 1, 0)
	unregistered.Object = 99
	if _, err := s.Push(ctx, unregistered); !errors.As(err, &refused) || errors.Is(err, store.ErrProviderBusy) {
		t.Fatalf("push of an unregistered object = %v; want a refusal that is not busy", err)
	}
}
