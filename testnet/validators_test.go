package testnet_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/testnet"
)

// With one of four validators stopped, an upload still registers, is
// stored and gets accepted on chain.
func TestUploadWithAValidatorDown(t *testing.T) {
	if testing.Short() {
		t.Skip("4 validators")
	}
	net := testnet.New(t, testnet.Providers(1), testnet.Validators(4))
	if len(net.Validators()) != 4 {
		t.Fatalf("%d validators", len(net.Validators()))
	}
	if err := net.StopValidator(3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := bytes.Repeat([]byte("satchel "), 40_000)
	obj, err := net.Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the object is accepted on chain", func() bool {
		o, err := net.Client.DataObject(ctx, obj.Bag, obj.ID)
		return err == nil && o.Accepted
	})
	vals, err := net.Client.Validators(ctx)
	if err != nil || len(vals) != 4 {
		t.Fatalf("validators in state: %+v, %v", vals, err)
	}
	var _ chain.Validator = vals[0]
}
