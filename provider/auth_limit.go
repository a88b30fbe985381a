package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/internal/keyedsem"
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
	perPeer, all int
	sem          *keyedsem.Sem[peer.ID]
	peerOf       func(context.Context) peer.ID // who a read is for: store.RemotePeer
}

func newAuthLimiter(perPeer, all int) *authLimiter {
	return &authLimiter{perPeer: perPeer, all: all, sem: keyedsem.New[peer.ID](perPeer, all), peerOf: remotePeer}
}

// acquire waits for a slot of the peer ctx names (store.RemotePeer; the
// node's own reads share one) and one of all. release gives them back.
func (l *authLimiter) acquire(ctx context.Context) (release func(), err error) {
	p := l.peerOf(ctx)
	switch err := l.sem.Acquire(ctx, p); {
	case errors.Is(err, keyedsem.ErrAllFull):
		return nil, busyError{fmt.Errorf("provider busy: %d chain look-ups in flight for all peers; retry later: %w", l.all, ctx.Err())}
	case err != nil:
		return nil, fmt.Errorf("this peer's requests keep %d chain look-ups in flight on this provider; retry with fewer objects at once: %w", l.perPeer, ctx.Err())
	}
	return func() { l.sem.Release(p) }, nil
}

// waiting returns how many reads hold or wait for a slot of peer p.
func (l *authLimiter) waiting(p peer.ID) int { return l.sem.Users(p) }

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
