package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// unrecordedBind is a provider's answer to a BIND whose contract it could
// not record (a write error): FAILED, asking to be bound again.
func unrecordedBind() error {
	return &store.RefusedError{Status: storepb.Status_STATUS_FAILED,
		Reason: "provider could not record the contract: leveldb: closed; bind again"}
}

// A BIND answered FAILED is sent again (binding is idempotent): a provider
// that failed once is bound on the second try and counted; one that fails
// every time is given up after bindAttempts, and the put names it.
func TestPutBindsAgainAfterFailedBindFake(t *testing.T) {
	net := newFakeNet(t, 2)
	ctx := testCtx(t)
	flaky := net.providers[0]
	failures := 1
	flaky.bindHook = func() error { // called with flaky.mu held
		if failures > 0 {
			failures--
			return unrecordedBind()
		}
		return nil
	}
	obj, err := net.client(t.TempDir()).Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 200<<10, 51)))
	if err != nil {
		t.Fatalf("put with a bind that failed once: %v", err)
	}
	flaky.mu.Lock()
	binds := flaky.binds
	flaky.bindHook = unrecordedBind
	flaky.binds = 0
	flaky.mu.Unlock()
	if len(obj.Providers) != 2 || binds != 2 {
		t.Fatalf("put on %d providers after %d binds of the flaky one; want 2 providers, 2 binds", len(obj.Providers), binds)
	}

	_, err = net.client(t.TempDir()).Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 200<<10, 52)))
	var np *NoProviderError
	if !errors.As(err, &np) {
		t.Fatalf("put with a bind that always fails: %v; want a NoProviderError", err)
	}
	flaky.mu.Lock()
	binds = flaky.binds
	flaky.mu.Unlock()
	if binds != bindAttempts {
		t.Fatalf("%d binds of a provider that always fails; want %d", binds, bindAttempts)
	}
}

// A provider that says whether binding again may help is believed: a BIND
// answered FAILED with retry false (a chunk missing: the same BIND would
// fail again) is sent once and the provider given up; one answered with
// retry true is sent again, as from a provider that predates the flag.
func TestPutBindsAgainOnlyWhenAskedFake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry bool
		binds int
	}{
		{"retry false", false, 1},
		{"retry true", true, bindAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := newFakeNet(t, 2)
			flaky := net.providers[0]
			flaky.bindHook = func() error { // called with flaky.mu held
				return &store.RefusedError{Status: storepb.Status_STATUS_FAILED, Retry: tc.retry, RetrySaid: true,
					Reason: "blockstore: object's blocks not held: 1 missing; push them, then bind again"}
			}
			_, err := net.client(t.TempDir()).Put(testCtx(t), net.bag, bytes.NewReader(randomBytes(t, 200<<10, 53)))
			var np *NoProviderError
			if !errors.As(err, &np) {
				t.Fatalf("put with a bind that always fails: %v; want a NoProviderError", err)
			}
			flaky.mu.Lock()
			binds := flaky.binds
			flaky.mu.Unlock()
			if binds != tc.binds {
				t.Fatalf("%d binds of a provider answering FAILED with retry %v; want %d", binds, tc.retry, tc.binds)
			}
		})
	}
}
