package p2p

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrAddrInUse means a listen address's port is held by another socket,
// another node's most likely. The host does not start.
var ErrAddrInUse = errors.New("address in use")

// listen starts a listener on every address, in order, and fails on the
// first that cannot be served, naming it. libp2p's own listening succeeds
// when any one address does, so a node told to listen on a taken TCP port
// and a free QUIC one would start without the TCP port.
//
// The TCP transport runs without SO_REUSEPORT (newLibp2pHost): with it, a
// second node on a port another node listens on starts without error and
// the kernel hands each of them about half the incoming connections, so
// half the dials reach the wrong peer.
func listen(h host.Host, addrs []ma.Multiaddr) error {
	// The swarm's AddListenAddr returns the transport's error as it is;
	// Network.Listen flattens it to text.
	add := h.Network().Listen
	if s, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error }); ok {
		add = func(a ...ma.Multiaddr) error { return s.AddListenAddr(a[0]) }
	}
	for _, a := range addrs {
		err := add(a)
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("p2p: listen on %s: %w; pass another --listen (or set p2p.listen in the config)", a, ErrAddrInUse)
		}
		if err != nil {
			return fmt.Errorf("p2p: listen on %s: %w", a, err)
		}
	}
	return nil
}
