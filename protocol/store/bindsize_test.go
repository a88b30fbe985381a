package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// ObjectSize of the fake data directory: the size each object was
// registered with.
func (a *spAuth) ObjectSize(_ context.Context, bag string, object uint64) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.objects[object]
	if !ok || o.bag != bag {
		return 0, fmt.Errorf("object %d is not registered in bag %s", object, bag)
	}
	return o.size, nil
}

func (a spExampleAuth) ObjectSize(_ context.Context, bag string, obj uint64) (uint64, error) {
	if bag != "dynamic:channel:1" || obj != 1 {
		return 0, fmt.Errorf("object %d is not registered in bag %s", obj, bag)
	}
	return a.size, nil
}

// A BIND whose chunk list builds the chain's content ID but holds more bytes
// than the object was registered (and charged) with is refused, and the
// object is not recorded.
func TestBindRefusesSizeOtherThanRegistered(t *testing.T) {
	e := newSPEnv(t)
	ctx := context.Background()
	data := spRand(11, 300_000)
	res := e.spObjectData(t, 1, data, 64<<10)
	// The uploader registered 1 byte: the voucher was charged for 1 byte.
	e.auth.register(1, spBag, res.Root, 1)
	s := e.open(t)
	for i := range res.Chunks {
		if _, err := s.Push(ctx, spPush(t, res, data, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks})
	var re *store.RefusedError
	if !errors.As(err, &re) || re.Status != pb.Status_STATUS_REFUSED || !strings.Contains(re.Reason, "registered on chain with 1") {
		t.Fatalf("bind of %d bytes registered as 1: %v; want a refusal naming the sizes", res.Size, err)
	}
	if objs, err := e.bs.Objects(spBag); err != nil || len(objs) != 0 {
		t.Fatalf("objects after the refused bind = %v, %v; want none", objs, err)
	}
	// With the true size the same chunks bind.
	e.auth.register(1, spBag, res.Root, uint64(res.Size))
	if err := s.Bind(ctx, store.BindRequest{Bag: spBag, Object: 1, Chunks: res.Chunks}); err != nil {
		t.Fatalf("bind with the registered size: %v", err)
	}
}
