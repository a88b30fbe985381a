package store_test

import (
	"context"
	"testing"
	"time"
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
