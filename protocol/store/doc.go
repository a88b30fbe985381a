// Package store is the store protocol, /satchel/store/1.0.0
// (docs/PROTOCOL.md): an uploader opens one stream to a storage provider and
// moves many chunks over it, pipelined. Every frame it sends is a
// StoreRequest whose id names one exchange; the provider answers with
// StoreReply frames carrying the same id, in any order across ids. A chunk's
// exchange goes
//
//	request  → AGREED | ALREADY_STORED (straight to sign) | REFUSED
//	segments → SEGMENTS_OK | ALREADY_STORED | FAILED
//	data...  → DATA_RECEIVED (stored durably) | FAILED
//	sign     → SIGNED with a receipt | FAILED
//
// and a BIND exchange ties the pushed chunks to their object: → BOUND |
// REFUSED | FAILED; a DROP gives a streamed session up → DROPPED.
//
// The caller side is Stream, which the client library and syncing nodes
// use; every receipt it returns is verified (VerifyReceipt) and bound to
// the push it answers (the push's session and nonce, docs/PROTOCOL.md
// "Receipts"). A refusal is a *RefusedError; one because the provider is
// busy with other peers matches ErrProviderBusy (push elsewhere):
//
//	s, err := store.Open(ctx, h, provider)
//	receipt, err := s.Push(ctx, store.ChunkPush{Bag: bag, Object: id, CID: c, Data: data, Proof: proof})
//	err = s.Bind(ctx, store.BindRequest{Bag: bag, Object: id, Chunks: chunks})
//
// Pipelined replication stores a chunk on several providers while the
// uploader sends it once: PushPipeline sends it with a forward list, each
// provider stores it and passes it on (a Handler given a Relay with
// WithRelay), and the receipts of every hop come back relayed, each
// verified against its own provider's key:
//
//	res, err := s.PushPipeline(ctx, store.ChunkPush{..., Forward: []store.Hop{{Peer: p2}, {Peer: p3}}})
//	// res.Receipts: p1's, p2's, p3's; res.Failed: hops routed around
//
// A hop of res.Failed whose error matches ErrProviderBusy refused as busy
// (alive and loaded: push to another provider, or to it later). A hop
// takes a chunk forwarded into a renter's contract session only with the
// renter's hop token (SignHopToken), checked against the renter's key its
// Authorizer gives (SessionOwner) or the one in the renter's peer ID.
//
// The handler side is Handler, served by storage providers through the p2p
// stream framework. It depends on two small interfaces the node implements:
// Blocks (its durable block store) and Authorizer (what the data directory
// allows).
//
// Files: caller.go (Stream), handler.go (the per-stream loop),
// handler_chunk.go and handler_bind.go (the handler's steps),
// handler_stall.go (exchanges whose uploader makes no progress), pipeline.go
// (forward lists and relayed receipts, the uploader's side), relay.go,
// relay_dial.go (which addresses a hop is dialled at) and
// handler_forward.go (the forwarding provider's side), hoptoken.go (hop
// tokens), frames.go
// (frames encoded and decoded by hand, so chunk bytes are never copied into
// or out of a marshalled message), receipt.go (signed receipts), limits.go.
package store
