// Package rpc is the client side of the data directory's chain: a
// chain.Transport over a CometBFT node's RPC interface. It is what apps and
// nodes that do not run a validator link — the client library among them —
// and it links none of CometBFT's node, consensus or mempool code.
//
// Open is how a node or an app reads a remote endpoint: every answer is
// proven against headers the validators signed (package chain/verify),
// from the trust root a Trust names — the network's genesis file or a
// trusted header — so the endpoint need not be trusted; one that lies is
// refused with an error naming it. Trust.TrustRPC opts out.
//
//	t, err := rpc.Open(ctx, "http://127.0.0.1:26657", rpc.Trust{Genesis: "genesis.json"})
//	c := chain.NewClient(t)
//	bag, err := c.Bag(ctx, id) // proven
//
// Dial gives the plain, unproven transport. The chain's own node
// (chain/node) serves the same interface in process and builds its local
// transport on Conn.
package rpc
