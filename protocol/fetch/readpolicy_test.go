package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// readPolicy is a fetch.ReadPolicy that serves every block but refused and
// counts, per block, the GETs it was asked about and the dones called. It
// is also a ReadRecorder, to show the handler does not call RecordRead on
// a ReadPolicy.
type readPolicy struct {
	refused cid.Cid

	mu          sync.Mutex
	asked, done map[cid.Cid]int
	serves      atomic.Int64 // Serves calls (HAVE)
	recorded    atomic.Int64 // RecordRead calls
}

func (p *readPolicy) Serves(_ context.Context, c cid.Cid) bool {
	p.serves.Add(1)
	return !c.Equals(p.refused)
}

func (p *readPolicy) ServeRead(_ context.Context, c cid.Cid) (func(), bool) {
	p.mu.Lock()
	p.asked[c]++
	p.mu.Unlock()
	// done is returned even when refusing: the handler must ignore it.
	return func() {
		p.mu.Lock()
		p.done[c]++
		p.mu.Unlock()
	}, !c.Equals(p.refused)
}

func (p *readPolicy) RecordRead(cid.Cid) { p.recorded.Add(1) }

func (p *readPolicy) counts(c cid.Cid) (asked, done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[c], p.done[c]
}

// TestReadPolicyDoneOnlyAfterBytes: a GET asks ServeRead, not Serves, and
// calls done exactly once when it answered the block's bytes, whole or a
// range; a GET the policy refuses, of a block not held, of a corrupt block
// or past a block's end, and every HAVE, call no done (nor RecordRead).
func TestReadPolicyDoneOnlyAfterBytes(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put := func(seed uint64) ([]byte, cid.Cid) {
		data := benchutil.Rand(seed, 256<<10)
		c := chunker.ChunkCID(data)
		if err := e.bs.Put(c, data); err != nil {
			t.Fatal(err)
		}
		return data, c
	}
	data, good := put(31)
	_, refused := put(32)
	corruptData, corrupt := put(33)
	absent := chunker.ChunkCID([]byte("absent"))
	bad := bytes.Clone(corruptData)
	bad[1000] ^= 1
	overwriteBlock(t, e, corrupt, bad)

	pol := &readPolicy{refused: refused, asked: map[cid.Cid]int{}, done: map[cid.Cid]int{}}
	h := fetch.NewHandler(e.bs.ForProtocols(), pol, fetch.WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(e.net.Host(1).Protocol()) // replaces the env's handler
	t.Cleanup(func() { _ = h.Close() })
	expect := func(what string, c cid.Cid, asked, done int) {
		t.Helper()
		if a, d := pol.counts(c); a != asked || d != done {
			t.Fatalf("%s: ServeRead asked %d times, done called %d times; want %d and %d", what, a, d, asked, done)
		}
	}

	have, err := e.fetch.Have(ctx, e.server.ID(), []cid.Cid{good, refused, corrupt, absent})
	if err != nil || !have[0] || have[1] || !have[2] || have[3] {
		t.Fatalf("Have = %v, %v", have, err)
	}
	if pol.serves.Load() != 3 { // absent is not held: the policy is not asked
		t.Fatalf("HAVE asked Serves %d times, want 3", pol.serves.Load())
	}
	expect("HAVE", good, 0, 0)

	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), refused); !errors.Is(err, fetch.ErrNotServed) {
		t.Fatalf("GET the policy refuses: %v", err)
	}
	expect("refused GET", refused, 1, 0)
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), absent); !errors.Is(err, fetch.ErrNotServed) {
		t.Fatalf("GET of a block not held: %v", err)
	}
	expect("GET of a block not held", absent, 1, 0)
	if _, err := e.fetch.GetBlock(ctx, e.server.ID(), corrupt); !errors.Is(err, fetch.ErrBlockFailed) {
		t.Fatalf("GET of a corrupt block: %v", err)
	}
	expect("failed GET", corrupt, 1, 0)
	if _, _, err := e.fetch.GetRange(ctx, e.server.ID(), good, uint64(len(data))+1, 1); !errors.Is(err, fetch.ErrRefused) {
		t.Fatalf("GET past the block's end: %v", err)
	}
	expect("GET past the end, block read whole", good, 1, 0)

	got, err := e.fetch.GetBlock(ctx, e.server.ID(), good)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET of a served block: %v", err)
	}
	expect("whole GET", good, 2, 1)
	if _, _, err := e.fetch.GetRange(ctx, e.server.ID(), good, uint64(len(data))+1, 1); !errors.Is(err, fetch.ErrRefused) {
		t.Fatalf("GET past the end of a verified block: %v", err)
	}
	expect("GET past the end, range read", good, 3, 1)
	got, _, err = e.fetch.GetRange(ctx, e.server.ID(), good, 100, 16)
	if err != nil || !bytes.Equal(got, data[100:116]) {
		t.Fatalf("ranged GET of a served block: %v", err)
	}
	expect("ranged GET", good, 4, 2)

	if n := pol.recorded.Load(); n != 0 {
		t.Fatalf("RecordRead called %d times on a ReadPolicy", n)
	}
	if n := pol.serves.Load(); n != 3 {
		t.Fatalf("GETs asked Serves %d times; a ReadPolicy is asked through ServeRead", n-3)
	}
}
