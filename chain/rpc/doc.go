// Package rpc is the client side of the data directory's chain: a
// chain.Transport over a CometBFT node's RPC interface. It is what apps and
// nodes that do not run a validator link — the client library among them —
// and it links none of CometBFT's node, consensus or mempool code.
//
//	t, err := rpc.Dial("http://127.0.0.1:26657")
//	c := chain.NewClient(t)
//	bag, err := c.Bag(ctx, id)
//
// The chain's own node (chain/node) serves the same interface in process and
// builds its local transport on Conn.
package rpc
