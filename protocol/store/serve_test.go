package store_test

import (
	"testing"

	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// serveStore serves the store protocol on net's host i, over a fresh block
// store, with auth and opts (after a discarding logger), until the test
// ends. It returns the block store.
func serveStore(t *testing.T, net *testnet.Network, i int, auth store.Authorizer, opts ...store.HandlerOption) *blockstore.Store {
	t.Helper()
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
	if err != nil {
		t.Fatal(err)
	}
	prov := net.Host(i).Libp2p()
	h := store.NewHandler(bs.ForProtocols(), auth, prov.Peerstore().PrivKey(prov.ID()), append([]store.HandlerOption{store.WithLogger(spDiscard)}, opts...)...)
	h.Register(net.Host(i).Protocol())
	t.Cleanup(func() { _ = h.Close(); _ = bs.Close() })
	return bs
}
