package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// overwriteBlock writes data over block c where the block store keeps it,
// in place.
func overwriteBlock(t *testing.T, e *env, c cid.Cid, data []byte) {
	t.Helper()
	blocktest.Overwrite(t, e.bs, c, func(b []byte) { copy(b, data) })
}

// TestRangedGetReadsOnlyTheRange shows the cost and the guarantee of a
// ranged GET: the first range of a block reads and verifies it whole (a
// damaged block is refused), later ranges of a block verified moments ago
// read only their bytes (damage elsewhere in the block does not stop them),
// and a whole-block GET is verified every time.
func TestRangedGetReadsOnlyTheRange(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := benchutil.Rand(21, 1<<20)
	c := chunker.ChunkCID(data)
	if err := e.bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	got, size, err := e.fetch.GetRange(ctx, e.server.ID(), c, 7, 1)
	if err != nil || size != uint64(len(data)) || !bytes.Equal(got, data[7:8]) {
		t.Fatalf("first 1-byte range: %v, %d, %v", got, size, err)
	}
	bad := bytes.Clone(data)
	bad[900_000] ^= 1
	overwriteBlock(t, e, c, bad)
	got, _, err = e.fetch.GetRange(ctx, e.server.ID(), c, 100, 16)
	if err != nil || !bytes.Equal(got, data[100:116]) {
		t.Fatalf("range of a recently verified block, away from the damage: %v (the whole block was read)", err)
	}
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), c); !errors.Is(err, fetch.ErrBlockFailed) {
		t.Fatalf("whole GET of a damaged block: %v", err)
	}

	// A block never verified: its first range verifies it whole.
	other := benchutil.Rand(22, 1<<20)
	oc := chunker.ChunkCID(other)
	if err := e.bs.Put(oc, other); err != nil {
		t.Fatal(err)
	}
	bad = bytes.Clone(other)
	bad[500_000] ^= 1
	overwriteBlock(t, e, oc, bad)
	if _, _, err := e.fetch.GetRange(ctx, e.server.ID(), oc, 0, 1); !errors.Is(err, fetch.ErrBlockFailed) {
		t.Fatalf("first range of a damaged block: %v", err)
	}
}

// recordingPolicy serves everything and counts the reads recorded.
type recordingPolicy struct{ reads atomic.Int64 }

func (p *recordingPolicy) Serves(context.Context, cid.Cid) bool { return true }
func (p *recordingPolicy) RecordRead(cid.Cid)                   { p.reads.Add(1) }

// TestHaveRecordsNoRead: asking whether a block is held is not reading it,
// so HAVE must not keep an object alive; a GET that sent bytes is a read, a
// GET of a block not held is not. The policy is a plain Policy and
// ReadRecorder (no ServeRead).
func TestHaveRecordsNoRead(t *testing.T) {
	e := newEnv(t)
	pol := &recordingPolicy{}
	h := fetch.NewHandler(e.bs.ForProtocols(), pol)
	h.Register(e.net.Host(1).Protocol()) // replaces the env's handler
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := benchutil.Rand(23, 64<<10)
	c := chunker.ChunkCID(data)
	if err := e.bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if have, err := e.fetch.Have(ctx, e.server.ID(), []cid.Cid{c}); err != nil || !have[0] {
			t.Fatalf("Have = %v, %v", have, err)
		}
	}
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), chunker.ChunkCID([]byte("absent"))); !errors.Is(err, fetch.ErrNotServed) {
		t.Fatalf("GET of a block not held: %v", err)
	}
	if n := pol.reads.Load(); n != 0 {
		t.Fatalf("HAVE or a GET of a block not held recorded %d reads", n)
	}
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), c); err != nil {
		t.Fatal(err)
	}
	if n := pol.reads.Load(); n != 1 {
		t.Fatalf("GET recorded %d reads, want 1", n)
	}
}
