package testnet_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/testnet"
)

// A provider whose store budget HoldStoreBudget holds refuses another
// uploader's chunk busy (store.ErrProviderBusy), counted in RefusedStores,
// and takes the upload once released. Without LimitStoreBudget the hold
// says the budget is not limited.
func TestHoldStoreBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := net.Provider(0)
	if _, err := p.HoldStoreBudget(ctx); err == nil {
		t.Fatal("hold of a provider whose store budget is not limited succeeded")
	}
	if err := p.LimitStoreBudget(ctx); err != nil {
		t.Fatal(err)
	}
	release, err := p.HoldStoreBudget(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	before := p.RefusedStores()
	data := bytes.Repeat([]byte("busy "), 1<<20/5*2)
	if _, err := net.UploadChunked(ctx, data, 1<<20, 0); !errors.Is(err, store.ErrProviderBusy) {
		t.Fatalf("upload to a provider held busy: %v, want store.ErrProviderBusy", err)
	}
	if p.RefusedStores() <= before {
		t.Fatal("the busy refusal was not counted")
	}
	release()
	obj, err := net.UploadChunked(ctx, append(data, "free"...), 1<<20, 0)
	if err != nil {
		t.Fatalf("upload once released: %v", err)
	}
	testnet.Wait(t, "the provider to hold the object", func() bool { return p.Holds(obj.ID) })
}
