package store

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
)

// remoteKey marks the context of a request with the peer that sent it.
type remoteKey struct{}

// withRemote returns ctx naming p as the peer whose request it serves.
func withRemote(ctx context.Context, p peer.ID) context.Context {
	return context.WithValue(ctx, remoteKey{}, p)
}

// RemotePeer returns the peer whose request an Authorizer call serves: the
// handler's contexts carry it, so an Authorizer can bound what one peer
// makes it do (the chain reads it causes).
func RemotePeer(ctx context.Context) (peer.ID, bool) {
	p, ok := ctx.Value(remoteKey{}).(peer.ID)
	return p, ok
}
