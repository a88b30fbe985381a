// Package fetch is the fetch protocol, /satchel/fetch/1.0.0: a reader asks a
// storage provider which blocks it holds (HAVE) and reads them (GET, whole or
// a range), many requests pipelined on one stream with replies in request
// order. docs/PROTOCOL.md describes the frames.
//
// The caller side is Client, used by the client library, distributors and
// providers syncing from each other; every whole block it returns is verified
// against its CID:
//
//	c := fetch.NewClient(h)
//	defer c.Close()
//	data, err := c.GetBlock(ctx, provider, blockCID)
//
// The handler side is Handler, served by storage providers through the p2p
// stream framework. It depends on the small Blocks and Policy interfaces the
// node implements:
//
//	h := fetch.NewHandler(blocks, policy, fetch.WithMetrics(reg))
//	h.Register(host.Protocol())
//
// A Policy that also records reads (to keep an object from removal while it
// is served) implements ReadPolicy, so a GET is decided and recorded from one
// look-up: ServeRead answers, and its done is called once the reply
// carrying the block's bytes is built, before it is written.
//
// The limits both sides enforce are the constants in limits.go.
package fetch
