package p2p_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// A peer's share of the fetch protocol is FetchPeer, not ProtocolPeer:
// on a fetch stream the reservation past FetchPeer fails, naming the
// peer's own scope within the protocol (not shared: the reader should
// retry with less in flight), while a store stream of the same peer
// reserves as much under ProtocolPeer.
func TestFetchPeerShare(t *testing.T) {
	const share = 8 << 20
	net := testnet.New(t, 2, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 {
			return []p2p.Option{p2p.WithMemoryLimits(p2p.MemoryLimits{FetchPeer: share, ProtocolPeer: 4 * share})}
		}
		return nil
	}))
	server := net.Host(0).Libp2p()
	// Each handler reads a byte, then reserves 3 MiB three times on its
	// stream and reports the first error.
	results := make(chan error, 2)
	for _, id := range []protocol.ID{p2p.FetchProtocol, p2p.StoreProtocol} {
		server.SetStreamHandler(id, func(s network.Stream) {
			defer s.Close()
			if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
				results <- err
				return
			}
			var err error
			for range 3 {
				if err = p2p.Reserve(s, 3<<20); err != nil {
					break
				}
			}
			results <- err
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reserve := func(id protocol.ID) error {
		s, err := net.Host(1).Libp2p().NewStream(ctx, server.ID(), id)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte{0}); err != nil { // the handler runs once the protocol is agreed
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		select {
		case err := <-results:
			return err
		case <-ctx.Done():
			t.Fatalf("%s handler never reported", id)
			return nil
		}
	}
	err := reserve(p2p.FetchProtocol)
	if !errors.Is(err, p2p.ErrMemoryBudget) {
		t.Fatalf("9 MiB on a fetch stream under an 8 MiB fetch share: %v, want ErrMemoryBudget", err)
	}
	if scope, shared := p2p.BudgetScope(err); shared || !strings.HasPrefix(scope, "protocol:"+string(p2p.FetchProtocol)+".peer:") {
		t.Fatalf("fetch refusal names scope %q (shared %v); want the peer's within the fetch protocol", scope, shared)
	}
	if err := reserve(p2p.StoreProtocol); err != nil {
		t.Fatalf("9 MiB on a store stream under a 32 MiB store share: %v", err)
	}
}
