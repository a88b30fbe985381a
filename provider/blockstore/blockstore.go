package blockstore

import (
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

var (
	// ErrCorrupt means a block's bytes on disk no longer hash to its CID.
	// The block has been quarantined: it is no longer served or counted as
	// held, and the node should fetch it again from a peer.
	ErrCorrupt = errors.New("blockstore: block is corrupt")

	// ErrCIDMismatch means bytes offered to Put do not hash to the CID given
	// with them. It wraps chunker.ErrCIDMismatch's meaning: errors.Is matches
	// both.
	ErrCIDMismatch = chunker.ErrCIDMismatch

	// ErrNotFound means the store does not hold the block.
	ErrNotFound = errors.New("blockstore: block not found")

	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("blockstore: store is closed")

	// ErrBadManifest means a manifest's chunk list does not build the root it
	// names.
	ErrBadManifest = errors.New("blockstore: manifest does not match its root")

	// ErrMissingBlocks is returned by PutManifest when the store does not
	// hold every chunk of the manifest; nothing is written.
	ErrMissingBlocks = errors.New("blockstore: manifest names chunks not held")

	// ErrSessionBag means a block was added to an upload session of another
	// bag.
	ErrSessionBag = errors.New("blockstore: session belongs to another bag")

	// ErrBlockTooLarge means a block offered to Put (or a session put) is
	// larger than 64 MiB, which no read would take back; nothing is stored.
	ErrBlockTooLarge = errors.New("blockstore: block larger than 64 MiB (67108864 bytes), the most a block may hold")
)

// ChunkRef names one chunk of an object: its CID and length.
type ChunkRef struct {
	CID  cid.Cid
	Size uint64
}

// Manifest describes one stored data object: the bag it belongs to, its ID
// on chain, its content ID (the DAG root), its size and its chunks in order.
type Manifest struct {
	Bag    string
	Object uint64
	Root   cid.Cid
	Size   uint64
	Chunks []ChunkRef
	// Nodes lists the interior DAG blocks of the object (root last). PutManifest
	// computes it from Chunks; callers leave it empty.
	Nodes []cid.Cid
}

// Stats counts what a store holds.
type Stats struct {
	// Blocks and Bytes count the blocks held (chunks and DAG nodes) and
	// their total size.
	Blocks uint64
	Bytes  uint64
	// Objects counts the manifests.
	Objects uint64
	// Quarantined counts blocks set aside as corrupt.
	Quarantined uint64
	// BadSessions counts the upload session records that do not decode,
	// as the last expiry pass found them: kept, with their blocks, since
	// their expiry is unknown.
	BadSessions uint64
}

// Session describes a provisional upload: blocks received for a bag before
// the object they belong to is bound, kept until Expiry.
type Session struct {
	// ID names the session; any non-empty bytes chosen by the caller.
	ID []byte
	// Bag is the bag every block of the session is for.
	Bag string
	// Expiry is when the session's unbound blocks may be deleted.
	Expiry time.Time
}
