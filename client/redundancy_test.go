package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/satchel-net/satchel/testnet"
)

// An upload does not report success on fewer providers than the bag's
// redundancy (its storage buckets) unless the caller accepts less, and then
// the Object says it is degraded.
func TestPutBelowRedundancyFailsUnlessAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir())
	ctx := testCtx(t)
	if err := net.Provider(2).Kill(); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 300<<10, 21)

	_, err := c.Put(ctx, net.Bag, bytes.NewReader(data))
	var npe *NoProviderError
	if !errors.As(err, &npe) || npe.Have != 2 {
		t.Fatalf("put with 2 of the bag's 3 providers up: %v; want a NoProviderError with 2 providers", err)
	}
	_, err = c.PutFile(ctx, net.Bag, writeTemp(t, data))
	if !errors.As(err, &npe) {
		t.Fatalf("put file with 2 of the bag's 3 providers up: %v; want a NoProviderError", err)
	}

	for _, put := range []func() (Object, error){
		func() (Object, error) { return c.Put(ctx, net.Bag, bytes.NewReader(data), WithMinRedundancy(2)) },
		func() (Object, error) { return c.PutFile(ctx, net.Bag, writeTemp(t, data), WithMinRedundancy(2)) },
	} {
		obj, err := put()
		if err != nil {
			t.Fatalf("put accepting 2 providers: %v", err)
		}
		if !obj.Degraded() || obj.Redundancy != 3 || len(obj.Providers) != 2 {
			t.Fatalf("object on %d providers, redundancy %d, degraded %v; want 2, 3, true", len(obj.Providers), obj.Redundancy, obj.Degraded())
		}
	}
}

// An upload asking for more copies than the bag has storage buckets, or
// for a minimum above the copies it makes, fails with ErrRedundancy before
// it sends a byte or registers anything: it would otherwise report success
// on fewer copies than asked.
func TestPutAskingMoreCopiesThanBucketsFails(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	c := netClient(t, net, t.TempDir())
	ctx := testCtx(t)
	data := randomBytes(t, 100<<10, 22)
	objects := func() int {
		t.Helper()
		objs, err := net.Client.Objects(ctx, net.Bag)
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}
	before := objects()
	for name, opts := range map[string][]PutOption{
		"4 copies of a 3-bucket bag": {WithRedundancy(4)},
		"at least 3 of 2 copies":     {WithRedundancy(2), WithMinRedundancy(3)},
		"at least 4 of every bucket": {WithMinRedundancy(4)},
	} {
		if _, err := c.Put(ctx, net.Bag, bytes.NewReader(data), opts...); !errors.Is(err, ErrRedundancy) {
			t.Errorf("%s: %v, want ErrRedundancy", name, err)
		}
	}
	if after := objects(); after != before {
		t.Fatalf("the bag holds %d objects after the refused puts, want %d: nothing registered", after, before)
	}
	if _, err := c.Put(ctx, net.Bag, bytes.NewReader(data), WithRedundancy(3), WithMinRedundancy(3)); err != nil {
		t.Fatalf("3 copies of a 3-bucket bag: %v", err)
	}
}
