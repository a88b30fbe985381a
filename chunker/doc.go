// Package chunker splits a stream into fixed-size chunks, gives every chunk
// its content ID and computes the file's content ID, with merkle proofs that
// tie each chunk to the file.
//
// A chunk's ID is a CIDv1 with the raw codec and a sha2-256 multihash. A
// file's ID is the root of a UnixFS balanced DAG with raw leaves and at most
// [MaxLinks] links per node, so it equals what IPFS computes for the same
// bytes with `ipfs add --cid-version=1 --raw-leaves --chunker=size-N`: an
// empty file is the raw CID of no bytes, a one-chunk file is that chunk's CID,
// and larger files are dag-pb nodes (UnixFS File data with filesize and
// blocksizes) above the leaves.
//
// Chunking streams: a bounded window of chunks is hashed by a pool of
// workers (GOMAXPROCS by default) while the next chunks are read, and
// results come back in order; the DAG is built as the chunk IDs arrive,
// with one partly filled node per level. What grows with the file is what
// the result keeps by default: one [ChunkInfo] per chunk and the DAG's
// interior nodes, about one 8 KiB block per 174 chunks (some 140 MB per TiB
// of 1 MiB chunks in all). WithChunkList(false) and WithNodes(false) drop
// them, and [WithNodeFunc] hands each interior block out as soon as it is
// complete, so memory stays constant whatever the file's size:
//
//	res, err := chunker.Sum(ctx, f, chunker.WithChunkList(false), chunker.WithNodes(false))
//	// res.Root, res.Size and res.NumChunks only.
//
// The main call computes a file's ID and sees every chunk on the way, for
// example to push it to a peer:
//
//	res, err := chunker.Sum(ctx, f, chunker.WithChunkFunc(func(c chunker.Chunk) error {
//		return push(ctx, c.CID, c.Data) // c.Data is only valid during the call
//	}))
//	// res.Root is the file's content ID; res.Proof(i) proves chunk i.
//
// [Writer] does the same for bytes written to it (io.Copy into it),
// [Chunker] hands out chunks one at a time with Next, and [Builder] computes
// the root from chunk IDs alone. A holder of the root checks one chunk with [VerifyChunk] and
// [VerifyProof]; every byte read back is verified against its CID.
package chunker
