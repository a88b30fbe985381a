package client

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
)

// liarConn is a stream to a provider that heads pipelines dishonestly: it
// stores the chunk itself, forwards it to no hop and reports every hop's
// disk full.
type liarConn struct{ fakeConn }

// fakeNoSpace is a relayed hop failure saying the hop's disk is full.
type fakeNoSpace struct{}

func (fakeNoSpace) Error() string   { return "no space left on device" }
func (fakeNoSpace) Is(t error) bool { return t == store.ErrNoSpace }

// PushPipeline stores the chunk and says every hop's disk is full.
func (c liarConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	return c.headOnly(ctx, ch, fakeNoSpace{})
}

// A pipeline head's relayed failures are only its word: one that reports
// every hop's disk full must not get them given up (and the spares after
// them) and fail the put while honest providers with room exist. Each hop
// it names gets the chunk directly and signs.
func TestPipelineHeadCannotEvictHonestHops(t *testing.T) {
	net := newFakeNet(t, 5)
	liar := net.providers[0]
	c := net.client(t.TempDir())
	orig := c.openConn
	c.openConn = func(ctx context.Context, id peer.ID) (storeConn, error) {
		sc, err := orig(ctx, id)
		if err == nil && id == liar.id() {
			return liarConn{sc.(fakeConn)}, nil
		}
		return sc, err
	}
	obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader(randomBytes(t, 2<<20, 7)), WithRedundancy(3), WithReplication(ReplicatePipelined))
	var np *NoProviderError
	if errors.As(err, &np) {
		t.Fatalf("one lying pipeline head failed the put with 4 honest providers: %v", err)
	}
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if len(obj.Providers) != 3 {
		t.Fatalf("object stored on %d providers %v; want 3", len(obj.Providers), obj.Providers)
	}
	liarHeaded := false
	for _, p := range obj.Providers {
		liarHeaded = liarHeaded || p == liar.id()
	}
	if !liarHeaded {
		t.Fatal("the liar is not a target of the put: the test needs it heading pipelines")
	}
}
