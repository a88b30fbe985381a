package client

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// doneSpy is a context that reports when its Done is first asked for:
// bufPool.get asks only once it waits for a buffer.
type doneSpy struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *doneSpy) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// take picks a chunk's targets after its wait for a buffer, not before: a
// target given up while every buffer was in use is not handed the chunk.
func TestTakePicksTargetsAfterBufferWait(t *testing.T) {
	pool := newBufPool(1, 16)
	a := &target{queue: make(chan *chunkJob, 1)}
	b := &target{queue: make(chan *chunkJob, 1)}
	p := &pusher{pool: pool, registered: true, targets: []*target{a, b}}
	held, err := pool.get(context.Background()) // every buffer in use
	if err != nil {
		t.Fatal(err)
	}
	ctx := &doneSpy{Context: testCtx(t), waiting: make(chan struct{})}
	type took struct {
		to  []*target
		buf []byte
		err error
	}
	res := make(chan took, 1)
	go func() {
		to, buf, err := p.take(ctx, 0)
		res <- took{to, buf, err}
	}()
	select {
	case <-ctx.waiting:
	case <-ctx.Context.Done():
		t.Fatal("take never waited for a buffer")
	}
	// b is given up while take waits, then a buffer comes back.
	b.mu.Lock()
	b.dead = errors.New("given up")
	b.mu.Unlock()
	pool.put(held)
	r := <-res
	if r.err != nil || r.buf == nil {
		t.Fatalf("take: buffer %v, err %v", r.buf != nil, r.err)
	}
	if len(r.to) != 1 || r.to[0] != a {
		t.Fatalf("take picked %d targets (a: %v); want a alone, b being given up during the wait", len(r.to), len(r.to) > 0 && r.to[0] == a)
	}
}

// With no target lacking the chunk, take neither waits for a buffer nor
// returns one.
func TestTakeNoTargetNoWait(t *testing.T) {
	pool := newBufPool(1, 16)
	a := &target{queue: make(chan *chunkJob, 1)}
	a.held.set(0)
	a.nheld = 1
	p := &pusher{pool: pool, registered: true, targets: []*target{a}}
	if _, err := pool.get(context.Background()); err != nil { // every buffer in use
		t.Fatal(err)
	}
	to, buf, err := p.take(testCtx(t), 0)
	if len(to) != 0 || buf != nil || err != nil {
		t.Fatalf("take of a chunk every target holds = %d targets, buffer %v, %v; want none, at once", len(to), buf != nil, err)
	}
}
