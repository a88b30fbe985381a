package fetch

import (
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
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// heldBlock serves one block, holding every Get until open is called.
type heldBlock struct {
	c       cid.Cid
	data    []byte
	gate    chan struct{}
	once    sync.Once
	entered atomic.Int64
}

func (b *heldBlock) Has(c cid.Cid) (bool, error) { return c.Equals(b.c), nil }

func (b *heldBlock) Get(c cid.Cid) ([]byte, error) {
	if !c.Equals(b.c) {
		return nil, ErrNotFound
	}
	b.entered.Add(1)
	<-b.gate
	return b.data, nil
}

func (b *heldBlock) open() { b.once.Do(func() { close(b.gate) }) }

type servesAll struct{}

func (servesAll) Serves(context.Context, cid.Cid) bool { return true }

// heldEnv is a provider (host 0) serving one 1 MiB block it holds back
// until told, and a Client on host 1. recycled counts the reply frames
// the Client hands back to the pool.
type heldEnv struct {
	f        *Client
	provider *p2p.Host
	block    *heldBlock
	recycled *atomic.Int64
}

func newHeldEnv(t *testing.T, opts ...ClientOption) *heldEnv {
	t.Helper()
	net := testnet.New(t, 2)
	data := benchutil.Rand(77, 1<<20)
	block := &heldBlock{c: chunker.ChunkCID(data), data: data, gate: make(chan struct{})}
	h := NewHandler(block, servesAll{}, WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(net.Host(0).Protocol())
	f := NewClient(net.Host(1).Libp2p(), opts...)
	recycled := new(atomic.Int64)
	recycleFrame = func(frame []byte) {
		if frame != nil {
			recycled.Add(1)
		}
		p2p.RecycleFrame(frame)
	}
	t.Cleanup(func() {
		block.open()
		_ = f.Close()
		_ = h.Close()
		recycleFrame, testHookReplyRead, testHookCallsFailed = p2p.RecycleFrame, nil, nil
	})
	return &heldEnv{f: f, provider: net.Host(0), block: block, recycled: recycled}
}

// getHeld starts a ReadBlock of the held block and returns once the
// provider holds it; the result arrives on the channel (a block read is
// released at once, and reported as no error).
func (e *heldEnv) getHeld(t *testing.T, ctx context.Context) <-chan error {
	t.Helper()
	errs := make(chan error, 1)
	go func() {
		b, err := e.f.ReadBlock(ctx, e.provider.ID(), e.block.c)
		b.Release()
		errs <- err
	}()
	wait, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ctxsleep.Poll(wait, func() bool { return e.block.entered.Load() == 1 }); err != nil {
		t.Fatalf("the provider never got the GET: %v", err)
	}
	return errs
}

// A reply the reader reads after Close began is dropped and its frame
// recycled; its call fails with ErrStreamClosed. The reply is made to
// arrive, and be read, just after Close has failed the calls: before
// Close failed them and marked the stream draining under one lock, the
// reader could hand that reply to the call Close had just failed, where
// nobody took it (its frame lost to the pool) or the call returned it.
func TestClientCloseDropsReplyReadAfter(t *testing.T) {
	e := newHeldEnv(t, WithCloseDrain(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	read := make(chan struct{}, 1)
	testHookReplyRead = func() { read <- struct{}{} }
	testHookCallsFailed = func() {
		// Only now the reply is sent; the reader reads it before Close
		// goes on.
		e.block.open()
		select {
		case <-read:
		case <-ctx.Done():
		}
	}
	errs := e.getHeld(t, ctx)
	if err := e.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("the ReadBlock in flight when Close began: %v, want ErrStreamClosed", err)
	}
	if n := e.recycled.Load(); n != 1 {
		t.Fatalf("%d reply frames recycled; want the one read after Close began", n)
	}
}

// A call given up (its context cancelled) before its reply came has that
// reply's frame recycled when the reader reads it, not left in a channel
// nobody reads.
func TestClientRecyclesLateReply(t *testing.T) {
	e := newHeldEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gone, giveUp := context.WithCancel(ctx)
	errs := e.getHeld(t, gone)
	giveUp()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled ReadBlock: %v, want context.Canceled", err)
	}
	if n := e.recycled.Load(); n != 0 {
		t.Fatalf("%d frames recycled before any reply came", n)
	}
	e.block.open()
	// Replies come in order on the one stream: once this one is read,
	// the late one has been.
	b, err := e.f.ReadBlock(ctx, e.provider.ID(), e.block.c)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.recycled.Load(); n != 1 {
		t.Fatalf("%d reply frames recycled; want the late reply's", n)
	}
	b.Release()
	if n := e.recycled.Load(); n != 2 {
		t.Fatalf("%d reply frames recycled after the block's release; want 2", n)
	}
}
