package keyedsem

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Many callers over a few keys never hold more than the per-key bound of
// one key, or the total of all, at once; every entry is gone once they
// are done.
func TestBoundsUnderConcurrency(t *testing.T) {
	const keys, perKey, total, callers, rounds = 3, 2, 4, 12, 200
	s := New[int](perKey, total)
	var in [keys]atomic.Int32
	var all, maxKey, maxAll atomic.Int32
	raise := func(m *atomic.Int32, v int32) {
		for old := m.Load(); v > old && !m.CompareAndSwap(old, v); old = m.Load() {
		}
	}
	var wg sync.WaitGroup
	for k := range keys {
		for range callers {
			wg.Go(func() {
				for range rounds {
					if err := s.Acquire(context.Background(), k); err != nil {
						t.Error(err)
						return
					}
					raise(&maxKey, in[k].Add(1))
					raise(&maxAll, all.Add(1))
					all.Add(-1)
					in[k].Add(-1)
					s.Release(k)
				}
			})
		}
	}
	wg.Wait()
	if maxKey.Load() > perKey || maxAll.Load() > total {
		t.Fatalf("held at most %d of one key and %d in all; bounds %d and %d", maxKey.Load(), maxAll.Load(), perKey, total)
	}
	if s.Keys() != 0 || s.Held() != 0 {
		t.Fatalf("after every release: %d keys, %d held; want none", s.Keys(), s.Held())
	}
}

// With every slot held, one Release lets exactly one waiter in, and the
// waiters that give up leave no entry behind.
func TestReleaseLetsOneIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New[string](2, 3)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan string, 10)
		var wg sync.WaitGroup
		for _, key := range []string{"a", "b", "c"} {
			for range 4 {
				wg.Go(func() {
					if s.Acquire(ctx, key) == nil {
						got <- key
					}
				})
			}
		}
		holds := map[string]int{}
		collect := func() int {
			synctest.Wait() // every caller holds its slots or waits
			n := 0
			for ; len(got) > 0; n++ {
				holds[<-got]++
			}
			return n
		}
		if n := collect(); n != 3 || s.Held() != 3 || holds["a"] > 2 || holds["b"] > 2 || holds["c"] > 2 {
			t.Fatalf("%d let in (%v), held %d; want 3, at most 2 a key", n, holds, s.Held())
		}
		for _, key := range []string{"a", "b", "c"} {
			if s.Users(key) != 4 {
				t.Fatalf("key %s: %d users; want 4", key, s.Users(key))
			}
		}
		for range 2 {
			var key string
			for key = range holds {
				if holds[key] > 0 {
					break
				}
			}
			s.Release(key)
			holds[key]--
			if n := collect(); n != 1 || s.Held() != 3 {
				t.Fatalf("one release let %d in, held %d; want 1, 3", n, s.Held())
			}
		}
		cancel()
		wg.Wait()
		for key, n := range holds {
			if s.Users(key) != n {
				t.Fatalf("key %s: %d users after the waiters gave up; want its %d holders", key, s.Users(key), n)
			}
			for range n {
				s.Release(key)
			}
		}
		if s.Keys() != 0 || s.Held() != 0 {
			t.Fatalf("after every release: %d keys, %d held; want none", s.Keys(), s.Held())
		}
	})
}

// A caller whose context ends while it waits learns which bound held it
// up, takes nothing, and leaves no entry; TryAcquire never waits.
func TestAcquireGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New[string](1, 2)
		if !s.TryAcquire("a") || s.TryAcquire("a") {
			t.Fatal("TryAcquire: want the one slot of a, then none")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Acquire(ctx, "a"); !errors.Is(err, ErrKeyFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire over a's bound = %v; want ErrKeyFull and the deadline", err)
		}
		if err := s.Acquire(context.Background(), "b"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Acquire(ctx, "c"); !errors.Is(err, ErrAllFull) || errors.Is(err, ErrKeyFull) {
			t.Fatalf("Acquire over the total = %v; want ErrAllFull", err)
		}
		if s.TryAcquire("c") || s.Users("c") != 0 || s.Keys() != 2 || s.Held() != 2 {
			t.Fatalf("after c gave up: c users %d, %d keys, %d held; want 0, 2, 2", s.Users("c"), s.Keys(), s.Held())
		}
		s.Release("a")
		s.Release("b")
		if s.Keys() != 0 || s.Held() != 0 {
			t.Fatalf("after every release: %d keys, %d held; want none", s.Keys(), s.Held())
		}
	})
}

// Without bounds nothing waits and no entry is kept; a Release without an
// Acquire panics rather than let one more in.
func TestUnboundedAndMisuse(t *testing.T) {
	s := New[string](0, 0)
	for range 100 {
		if err := s.Acquire(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	}
	if s.Keys() != 0 || s.Held() != 100 {
		t.Fatalf("%d keys, %d held; want 0, 100", s.Keys(), s.Held())
	}
	b := New[string](2, 0)
	if err := b.Acquire(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{"b", "a", "a"} {
		func() {
			defer func() {
				if panicked := recover() != nil; panicked != (i != 1) {
					t.Errorf("release %d of %s: panicked %v; want a panic only without an Acquire", i, key, panicked)
				}
			}()
			b.Release(key)
		}()
	}
	if b.Keys() != 0 || b.Held() != 0 {
		t.Fatalf("%d keys, %d held; want none", b.Keys(), b.Held())
	}
}
