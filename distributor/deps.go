package distributor

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// BlockSource reads whole blocks from a storage provider: the caller side
// of the fetch protocol (fetch.Client) satisfies it. Every block is
// verified against its CID once before it is served or cached: by the
// fetch.Client that read it when the Block says so (fetch.Block.Verified),
// else by the node — a source that wraps a fetch.Client and builds Blocks
// of its own has them hashed. The node releases each block
// (fetch.Block.Release) once no request reads it any more; a source whose
// blocks lie in no pooled buffer returns fetch.Block{Data: b}, whose
// Release does nothing.
type BlockSource interface {
	ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error)
}

// ChainReader is what the node reads from the data directory: its buckets,
// their bags, the IDs of their objects (paged, at start), one object's
// record when it is requested, the bags' storage providers, and the stream
// of block events it follows. *chain.Client satisfies it.
type ChainReader interface {
	Info(ctx context.Context) (chain.NodeInfo, error)
	Bag(ctx context.Context, id chain.BagID) (chain.Bag, error)
	Bags(ctx context.Context) ([]chain.Bag, error)
	StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error)
	DistributionBucket(ctx context.Context, id chain.DistributionBucketID) (chain.DistributionBucket, error)
	ObjectsPage(ctx context.Context, bag chain.BagID, p chain.PageRequest) (chain.Page[chain.DataObject], error)
	DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error)
	Subscribe(ctx context.Context, fromHeight int64) (<-chan chain.BlockEvents, <-chan error)
}

// Submitter signs and submits transactions; *chain.Client satisfies it.
type Submitter interface {
	Submit(ctx context.Context, key chain.Key, msg chain.Msg) (chain.Committed, error)
}

var (
	_ BlockSource = (*fetch.Client)(nil)
	_ ChainReader = (*chain.Client)(nil)
	_ Submitter   = (*chain.Client)(nil)
)
