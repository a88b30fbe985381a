package testnet

import (
	"context"
	"testing"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/satchel-net/satchel/p2p"
)

// AnnounceProviders sends an ADD_PROVIDER of from for each key to node on
// one /satchel/kad stream, as a flood of provider records would, and
// returns once node has handled all it will: it closed the stream (all
// read) or reset it (a record refused).
func AnnounceProviders(ctx context.Context, t testing.TB, from host.Host, node peer.ID, keys [][]byte) {
	t.Helper()
	s, err := from.NewStream(ctx, node, p2p.KadProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	w := pbio.NewDelimitedWriter(s)
	me := pb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: from.ID(), Addrs: from.Addrs()}})
	for _, k := range keys {
		msg := pb.NewMessage(pb.Message_ADD_PROVIDER, k, 0)
		msg.ProviderPeers = me
		if err := w.WriteMsg(msg); err != nil {
			break // reset: the node refused one
		}
	}
	_ = s.CloseWrite()
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the node answered an ADD_PROVIDER")
		}
	case <-ctx.Done():
		t.Fatal("the node neither closed nor reset the stream of ADD_PROVIDERs")
	}
}
