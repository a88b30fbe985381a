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
// What cheap peers can make a provider hold or read is bounded: a stream
// holds at most MaxHeldGETs replies' memory; a GET that finds the memory
// every peer shares spent resets the stream whose write has been stalled
// longest (WithStallEviction) rather than be refused; ranges of blocks not
// verified lately draw on the peer's budget and the node's
// (WithRangeVerifyBudget, WithRangeVerifyNodeBudget); replies left unsent by
// streams their readers reset draw on the peer's abandonment budget, its
// address's and its IPv6 /48's and /32's (WithAbandonBudget,
// WithAbandonAddrShare, WithAbandonWideShare, WithAbandonNetShare).
// Client.Close drains
// the replies due rather than resetting, so an honest reader is not
// charged.
//
// The limits both sides enforce are the constants in limits.go.
package fetch
