// Package provider is the Satchel storage provider: the node that operates a
// storage bucket (Server: follows the chain, accepts uploads on chain, syncs
// missing objects from peers, cleans up, announces its bags on the DHT), the
// wire protocols it speaks — /satchel/store/1.0.0 and /satchel/fetch/1.0.0,
// each with its handler and its caller side — and signed storage receipts.
// Blocks live in the subpackage blockstore. docs/PROTOCOL.md is the wire
// specification; limits.go names every limit of it.
//
// An uploader (the client library, or a provider syncing a peer) pushes the
// chunks of an object over one pipelined stream, many goroutines at once,
// and binds the object at the end:
//
//	s, err := provider.OpenStore(ctx, h, providerID)
//	...
//	defer s.Close()
//	res, err := chunker.Sum(ctx, f) // or chunk as the bytes stream by
//	// for each chunk i, from up to provider.MaxChunksInFlight goroutines:
//	proof, _ := res.Proof(i)
//	receipt, err := s.Push(ctx, provider.ChunkPush{Bag: bag, Object: obj, Index: i,
//		CID: res.Chunks[i].CID, Data: chunkBytes, Proof: proof})
//	// receipt is verified; a refusal is a *provider.RefusedError
//	err = s.Bind(ctx, provider.BindRequest{Bag: bag, Object: obj, Chunks: res.Chunks})
//
// A reader fetches verified blocks from any provider of the bag:
//
//	f := provider.NewFetchClient(h)
//	defer f.Close()
//	data, err := f.GetBlock(ctx, providerID, c) // ErrCIDMismatch from a lying peer
//
// A node serves both protocols from its block store:
//
//	provider.NewStoreHandler(bs, authorizer, key, provider.WithObjectBound(accept)).Register(h)
//	provider.NewFetchHandler(bs, policy, provider.WithCorruptBlock(repair)).Register(h)
package provider
