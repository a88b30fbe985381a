package client

import (
	"bytes"
	"io"
	"testing"
)

// TestGetProgressTotals checks a download reports its total chunks, for the
// whole object and for a range, and ends with every one of them done.
func TestGetProgressTotals(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 1<<20+100, 51) // 17 chunks of 64 KiB
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range []struct {
		off, n int64
		chunks int
	}{{0, int64(len(data)), 17}, {65 << 10, 700 << 10, 11}, {10, 20, 1}, {64<<10 - 1, 2, 2}} {
		lp := &lastProgress{t: t}
		if _, err := c.GetRange(ctx, ObjectRef(net.bag, obj.ID), rg.off, rg.n, io.Discard, WithProgress(lp.fn)); err != nil {
			t.Fatal(err)
		}
		if p := lp.get(); p.TotalChunks != rg.chunks || p.Chunks != rg.chunks || p.Bytes != rg.n || p.TotalBytes != rg.n {
			t.Fatalf("range %d+%d: progress %+v, want %d chunks", rg.off, rg.n, p, rg.chunks)
		}
	}
}
