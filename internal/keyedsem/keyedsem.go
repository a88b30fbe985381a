// Package keyedsem is a counting semaphore per key (a peer, a client
// address) under an optional one all keys share: a holder takes one of its
// key's slots and one of all, so no key holds more than its share and all
// keys together no more than the total. A key's entry lives only while
// someone holds or waits for one of its slots, so however many keys come
// along, the memory is that of the callers in flight.
//
//	sem := keyedsem.New[peer.ID](4, 16)
//	if err := sem.Acquire(ctx, p); err != nil {
//		return err // errors.Is(err, keyedsem.ErrAllFull): busy for everyone
//	}
//	defer sem.Release(p)
package keyedsem

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors of an Acquire whose context ended while it waited, telling which
// bound it waited on; both wrap the context's error too.
var (
	ErrKeyFull = errors.New("keyedsem: every slot of the key is held")
	ErrAllFull = errors.New("keyedsem: every slot of all keys is held")
)

// Sem is the semaphore. Its methods may be called concurrently.
type Sem[K comparable] struct {
	perKey int
	all    chan struct{} // nil: no total bound
	held   atomic.Int64

	mu   sync.Mutex
	keys map[K]*slots
}

// slots are one key's; users counts those holding or waiting for one, so
// the entry goes when nobody does.
type slots struct {
	ch    chan struct{}
	users int
}

// New returns a semaphore of perKey slots per key and total slots in all;
// a bound of 0 or less is no bound.
func New[K comparable](perKey, total int) *Sem[K] {
	s := &Sem[K]{perKey: perKey, keys: map[K]*slots{}}
	if total > 0 {
		s.all = make(chan struct{}, total)
	}
	return s
}

// Acquire takes one of key's slots, then one of all, waiting while they
// are held. When ctx ends first it takes none and returns an error
// wrapping ctx's and ErrKeyFull or ErrAllFull, whichever it waited for.
// A slot free at once is taken even if ctx has ended.
func (s *Sem[K]) Acquire(ctx context.Context, key K) error {
	ks := s.join(key)
	if ks != nil && !send(ctx, ks.ch) {
		s.leave(key, ks)
		return fmt.Errorf("%w: %w", ErrKeyFull, ctx.Err())
	}
	if s.all != nil && !send(ctx, s.all) {
		s.unkey(key, ks)
		return fmt.Errorf("%w: %w", ErrAllFull, ctx.Err())
	}
	s.held.Add(1)
	return nil
}

// TryAcquire takes one of key's slots and one of all if both are free, and
// reports whether it did.
func (s *Sem[K]) TryAcquire(key K) bool {
	ks := s.join(key)
	if ks != nil && !send(nil, ks.ch) {
		s.leave(key, ks)
		return false
	}
	if s.all != nil && !send(nil, s.all) {
		s.unkey(key, ks)
		return false
	}
	s.held.Add(1)
	return true
}

// Release gives back the slots one Acquire or TryAcquire took for key,
// letting one waiter of key (or of any key, for the total) in. It panics
// when key holds none: a release without its acquire is a bug that would
// let more than the bound in.
func (s *Sem[K]) Release(key K) {
	var ks *slots
	if s.perKey > 0 {
		s.mu.Lock()
		ks = s.keys[key]
		s.mu.Unlock()
		if ks == nil || len(ks.ch) == 0 {
			panic("keyedsem: Release of a key that holds no slot")
		}
	}
	if s.held.Add(-1) < 0 {
		s.held.Add(1)
		panic("keyedsem: Release without an Acquire")
	}
	if s.all != nil {
		<-s.all
	}
	s.unkey(key, ks)
}

// Users returns how many callers hold or wait for one of key's slots
// (0 without a per-key bound).
func (s *Sem[K]) Users(key K) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks := s.keys[key]; ks != nil {
		return ks.users
	}
	return 0
}

// Held returns how many Acquires hold their slots now.
func (s *Sem[K]) Held() int { return int(s.held.Load()) }

// Keys returns how many keys have an entry: those with a caller holding or
// waiting for one of their slots.
func (s *Sem[K]) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// join counts a caller in for key's slots, making its entry if needed; nil
// without a per-key bound.
func (s *Sem[K]) join(key K) *slots {
	if s.perKey <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys[key]
	if ks == nil {
		ks = &slots{ch: make(chan struct{}, s.perKey)}
		s.keys[key] = ks
	}
	ks.users++
	return ks
}

// unkey gives back a held slot of key's (ks nil: none) and counts its
// caller out.
func (s *Sem[K]) unkey(key K, ks *slots) {
	if ks != nil {
		<-ks.ch
		s.leave(key, ks)
	}
}

// leave counts a caller out of key's slots, dropping the entry with the
// last.
func (s *Sem[K]) leave(key K, ks *slots) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks.users--; ks.users == 0 {
		delete(s.keys, key)
	}
}

// send takes a slot of ch: at once if one is free, else (ctx not nil)
// waiting until one is or ctx ends. It reports whether it took one.
func send(ctx context.Context, ch chan struct{}) bool {
	select {
	case ch <- struct{}{}:
		return true
	default:
	}
	if ctx == nil {
		return false
	}
	select {
	case ch <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
