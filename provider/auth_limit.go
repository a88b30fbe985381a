package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
)

// The authorizer's chain reads in flight are bounded per peer and in all:
// a read through the proof-checking transport that finds nothing waits for
// the next block, polling the chain node meanwhile, and any peer can name
// objects that do not exist. A request over the bound waits for a slot
// within its authorization timeout; answers from the cache, and lookups
// joining one already in flight, need none.
const (
	authReadsPerPeer = 4
	authReadsAll     = 16
)

// authLimiter hands out the chain read slots.
type authLimiter struct {
	perPeer int
	peerOf  func(context.Context) peer.ID // who a read is for: store.RemotePeer
	all     chan struct{}

	mu    sync.Mutex
	peers map[peer.ID]*peerSlots
}

// peerSlots are one peer's slots; users counts those holding or waiting
// for one, so the entry goes when nobody does.
type peerSlots struct {
	ch    chan struct{}
	users int
}

func newAuthLimiter(perPeer, all int) *authLimiter {
	return &authLimiter{perPeer: perPeer, all: make(chan struct{}, all), peers: map[peer.ID]*peerSlots{}, peerOf: remotePeer}
}

// acquire waits for a slot of the peer ctx names (store.RemotePeer; the
// node's own reads share one) and one of all. release gives them back.
func (l *authLimiter) acquire(ctx context.Context) (release func(), err error) {
	p := l.peerOf(ctx)
	l.mu.Lock()
	s := l.peers[p]
	if s == nil {
		s = &peerSlots{ch: make(chan struct{}, l.perPeer)}
		l.peers[p] = s
	}
	s.users++
	l.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		l.leave(p, s)
		return nil, fmt.Errorf("this peer's requests keep %d chain look-ups in flight on this provider; retry with fewer objects at once: %w", l.perPeer, ctx.Err())
	}
	select {
	case l.all <- struct{}{}:
	case <-ctx.Done():
		<-s.ch
		l.leave(p, s)
		return nil, busyError{fmt.Errorf("provider busy: %d chain look-ups in flight for all peers; retry later: %w", cap(l.all), ctx.Err())}
	}
	return func() {
		<-l.all
		<-s.ch
		l.leave(p, s)
	}, nil
}

func (l *authLimiter) leave(p peer.ID, s *peerSlots) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.users--; s.users == 0 {
		delete(l.peers, p)
	}
}

// waiting returns how many reads hold or wait for a slot of peer p.
func (l *authLimiter) waiting(p peer.ID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.peers[p]; s != nil {
		return s.users
	}
	return 0
}

func remotePeer(ctx context.Context) peer.ID {
	p, _ := store.RemotePeer(ctx)
	return p
}

// busyError is a look-up that found no slot of all: a budget every peer
// shares, so it matches store.ErrProviderBusy and the uploader is told busy
// (retry, not a failure). One over its own peer's slots is not.
type busyError struct{ err error }

func (e busyError) Error() string        { return e.err.Error() }
func (e busyError) Unwrap() error        { return e.err }
func (e busyError) Is(target error) bool { return target == store.ErrProviderBusy }
