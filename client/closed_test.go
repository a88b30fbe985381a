package client

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/testnet"
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

// TestGetMissingBag reads an object of a bag that does not exist: the error
// matches chain.ErrBagNotFound (and still chain.ErrObjectNotFound).
func TestGetMissingBag(t *testing.T) {
	net := newFakeNet(t, 1)
	c := net.client("")
	_, err := c.Get(testCtx(t), ObjectRef(chain.ChannelBag(99), 1), io.Discard)
	if !errors.Is(err, chain.ErrBagNotFound) || !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("get from a missing bag: %v", err)
	}
	t.Log(err)
	// A missing object of a bag that exists is not a missing bag.
	_, err = c.Get(testCtx(t), ObjectRef(net.bag, 12345), io.Discard)
	if !errors.Is(err, chain.ErrObjectNotFound) || errors.Is(err, chain.ErrBagNotFound) {
		t.Fatalf("get of a missing object: %v", err)
	}
}

// TestPutFileMissing puts a path that does not exist: the error matches
// fs.ErrNotExist.
func TestPutFileMissing(t *testing.T) {
	net := newFakeNet(t, 1)
	c := net.client("")
	_, err := c.PutFile(testCtx(t), net.bag, filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("put of a missing file: %v", err)
	}
}

// Reader.Close does not wait for a read blocked in its writer: it returns
// at once, and the Reader is released (Client.Close returns) when that
// read does.
func TestReaderCloseDoesNotWaitForBlockedWrite(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 300<<10, 42)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	read := make(chan error, 1)
	go func() { _, err := r.WriteTo(pw); read <- err }()
	if _, err := pr.Read(make([]byte, 1)); err != nil { // the read is under way, then blocks
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Reader.Close waits for a read blocked in its writer")
	}
	clientClosed := make(chan error, 1)
	go func() { clientClosed <- c.Close() }()
	// Once Close has begun (new operations are refused), a Close that did
	// not wait for the read would return at once: the window below runs
	// after that, however late a loaded machine starts the goroutine.
	testnet.Wait(t, "Client.Close to begin", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	})
	select {
	case <-clientClosed:
		t.Fatal("Client.Close returned while a read of an open download was still running")
	case <-time.After(100 * time.Millisecond):
	}
	_ = pr.Close() // the blocked Write fails; the read returns
	if err := <-read; err == nil {
		t.Fatal("a read whose writer was closed succeeded")
	}
	if err := <-clientClosed; err != nil {
		t.Fatal(err)
	}
}
