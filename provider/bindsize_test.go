package provider_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/testnet"
)

// Registering 1 byte and binding a larger DAG under that content ID is
// refused by the provider: the voucher was charged for 1 byte.
func TestBindRefusesMoreThanRegistered(t *testing.T) {
	net := newNet(t, testnet.Providers(1))
	ctx := testCtx(t)
	data := randomBytes(t, 64<<10)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := net.Register(ctx, 1, res.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	err = net.Push(ctx, obj, data, res, 0)
	if err == nil || !strings.Contains(err.Error(), "registered on chain with 1") {
		t.Fatalf("push and bind of %d bytes registered as 1: %v; want a refusal naming the sizes", len(data), err)
	}
	if p := net.Provider(0); p.Holds(obj.ID) {
		t.Fatal("the provider holds the object")
	}
}
