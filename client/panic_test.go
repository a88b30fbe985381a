package client

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/testnet"
)

type panicWriter struct{ after int }

func (w *panicWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		panic("writer broke")
	}
	return len(p), nil
}

// TestGetWriterPanics gives Get a writer that panics and a nil one: Get
// returns an error naming the panic and the program goes on.
func TestGetWriterPanics(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 1<<20, 31)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, ObjectRef(net.bag, obj.ID), &panicWriter{after: 200 << 10})
	if err == nil || !strings.Contains(err.Error(), "writer broke") || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("get into a panicking writer: %v", err)
	}
	// The error says where the writer panicked, and keeps the stack.
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "(*panicWriter).Write at ") || !strings.Contains(err.Error(), "panic_test.go:") ||
		!strings.Contains(string(pe.Stack), "panicWriter") {
		t.Fatalf("get into a panicking writer: %v; want a *PanicError naming (*panicWriter).Write and its line, with the stack", err)
	}
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), nil); err == nil {
		t.Fatal("get into a nil writer succeeded")
	}
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.WriteRange(ctx, nil, 0, 10); err == nil {
		t.Fatal("WriteRange into a nil writer succeeded")
	}
	// A progress callback that panics — at the totals the walk reports,
	// or at the bytes the writer reports mid-way, both in goroutines of
	// the download — is called no more; the download goes on.
	chunked, err := c.Put(ctx, net.bag, bytes.NewReader(data), WithChunkSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	c.progressEvery = 0 // every change reported
	for name, breaks := range map[string]func(Progress) bool{
		"totals":  func(p Progress) bool { return p.TotalChunks > 0 && p.Bytes == 0 },
		"mid-way": func(p Progress) bool { return p.Bytes > 0 && p.Bytes < p.TotalBytes },
	} {
		var out bytes.Buffer
		calls, broke := 0, false
		_, err := c.Get(ctx, ObjectRef(net.bag, chunked.ID), &out, WithProgress(func(p Progress) {
			if broke {
				calls++ // called after it panicked
			}
			if breaks(p) {
				broke = true
				panic("callback broke")
			}
		}))
		if err != nil || !bytes.Equal(out.Bytes(), data) || !broke || calls != 0 {
			t.Fatalf("get with a callback panicking at the %s report: %v (content equal %v), panicked %v, called %d times after; want the content and no call after",
				name, err, bytes.Equal(out.Bytes(), data), broke, calls)
		}
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get after the panics: %v", err)
	}
}

type panicReader struct{ left int }

func (r *panicReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		panic("reader broke")
	}
	n := min(len(p), r.left)
	r.left -= n
	return n, nil
}

// TestPutReaderPanics streams a reader that panics through Put: the panic
// reaches the caller, the spool file is gone and Close does not wait for
// the upload. A nil reader is an error.
func TestPutReaderPanics(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	if _, err := c.Put(ctx, net.bag, nil); err == nil {
		t.Fatal("put of a nil reader succeeded")
	}
	func() {
		defer func() {
			if v := recover(); v != "reader broke" {
				t.Fatalf("recovered %v, want the reader's panic", v)
			}
		}()
		_, _ = c.Put(ctx, net.bag, io.MultiReader(&panicReader{left: 300 << 10}))
	}()
	if left, _ := filepath.Glob(filepath.Join(tmp, "satchel-upload-*")); len(left) > 0 {
		t.Errorf("spool files left: %v", left)
	}
	// A progress callback that panics, at its first report or a later
	// one, is called no more; the upload goes on (its reports come from
	// goroutines of its own too, where a panic would end the program).
	for _, at := range []int{1, 2, 5} {
		calls := 0
		_, err := c.Put(ctx, net.bag, io.MultiReader(io.LimitReader(&panicReader{left: 1 << 20}, 200<<10)),
			WithProgress(func(Progress) {
				if calls++; calls == at {
					panic("callback broke")
				}
			}))
		if err != nil || calls > at {
			t.Fatalf("put with a callback panicking at report %d: %v, %d calls; want it stored and no call after", at, err, calls)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "satchel-upload-*")); len(left) > 0 {
		t.Errorf("spool files left: %v", left)
	}
	// A failing reader too.
	if _, err := c.Put(ctx, net.bag, io.MultiReader(io.LimitReader(&panicReader{left: 1 << 20}, 100<<10), errReader{})); err == nil {
		t.Fatal("put of a failing reader succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "satchel-upload-*")); len(left) > 0 {
		t.Errorf("spool files left: %v", left)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		// (The client's cleanup then waits for it too: the test hangs.)
		t.Fatal("Close waits for the panicked upload")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

// rereadPanics is file content whose second read of an offset panics: the
// file pass, which re-reads chunks to push them with their proofs, finds
// it broken.
type rereadPanics struct {
	data []byte
	mu   sync.Mutex
	seen map[int64]bool
}

func (r *rereadPanics) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	again := r.seen[off]
	r.seen[off] = true
	r.mu.Unlock()
	if again {
		panic("file broke")
	}
	return bytes.NewReader(r.data).ReadAt(p, off)
}

// A file whose re-read panics mid-upload: the panic reaches the caller
// and the pass's push workers stop (none is left waiting for chunks).
func TestPutFilePassPanicStopsWorkers(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 600<<10, 9)
	func() {
		defer func() {
			if v := recover(); v != "file broke" {
				t.Fatalf("recovered %v, want the file's panic", v)
			}
		}()
		_, _ = c.putAt(ctx, net.bag, &rereadPanics{data: data, seen: map[int64]bool{}}, int64(len(data)), mustPutOptions(t, c))
	}()
	workers := func() int {
		buf := make([]byte, 8<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*pusher).start.func")
	}
	testnet.Wait(t, "the push workers to stop after the panicked put", func() bool { return workers() == 0 })
}
