package client

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestClosedErrors checks a closed Reader and a closed Client fail with
// ErrClosed.
func TestClosedErrors(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 300<<10, 41)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := r.ReadAt(buf, 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(buf, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if _, err := r.WriteTo(io.Discard); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if _, err := r.WriteRange(ctx, io.Discard, 0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRange after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, net.bag, bytes.NewReader(data)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := c.Put(ctx, net.bag, io.MultiReader(bytes.NewReader(data))); !errors.Is(err, ErrClosed) {
		t.Fatalf("streamed Put after Close: %v", err)
	}
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), io.Discard); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := c.Upload(ctx, net.bag); !errors.Is(err, ErrClosed) {
		t.Fatalf("Upload after Close: %v", err)
	}
}
