package store

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
)

// Authorizer is what the handler asks the data directory before it agrees
// to store anything. The node implements it over the chain.
type Authorizer interface {
	// AuthorizeChunk returns the content ID of object in bag if the object
	// is registered in that bag, pending or accepted, and the bag is assigned
	// to the storage bucket this node operates. Its error's text is the
	// refusal reason the uploader sees; an error matching ErrProviderBusy
	// (a budget every peer shares is spent, such as the node's chain reads)
	// is sent as a busy refusal, which the uploader retries.
	AuthorizeChunk(ctx context.Context, bag string, object uint64) (root cid.Cid, err error)
	// AuthorizeSession checks that bag is assigned to this node's bucket and
	// that a streamed upload of bytes in total fits the bucket's free voucher
	// size. Its error's text is the refusal reason.
	AuthorizeSession(ctx context.Context, bag string, bytes uint64) error
	// ObjectSize returns the size of object in bag as the data directory
	// records it: the size its voucher was charged for. BIND refuses a
	// chunk list whose DAG holds another number of bytes (the UnixFS root
	// commits to the size), so no upload stores more than it paid for.
	// Its error's text is the refusal reason.
	ObjectSize(ctx context.Context, bag string, object uint64) (uint64, error)
}

// Blocks is the node's durable block store as the handler uses it. Every
// write is on disk (fsynced) when it returns: DATA_RECEIVED and receipts
// promise that.
type Blocks interface {
	// Has reports whether the store holds block c.
	Has(c cid.Cid) (bool, error)
	// StoredAt returns when block c was stored, or an error wrapping
	// ErrNotFound.
	StoredAt(c cid.Cid) (time.Time, error)
	// PutInSession verifies data against c, stores it durably and records
	// that upload session s holds it. It must not keep data after it
	// returns: the handler reuses the buffer for a later frame.
	PutInSession(s Session, c cid.Cid, data []byte) error
	// AddToSession records that session s holds block c, which the store
	// already holds (an error wrapping ErrNotFound if not).
	AddToSession(s Session, c cid.Cid) error
	// SessionInfo returns session id, the bytes its blocks hold, and whether
	// it is open.
	SessionInfo(id []byte) (s Session, bytes uint64, open bool, err error)
	// EndSession ends session id: its blocks no object or other session
	// holds are deleted.
	EndSession(id []byte) error
	// PutObject records an object whose chunks the store holds (an error
	// wrapping ErrMissingBlocks, and nothing written, if one is missing).
	PutObject(o Object) error
}

// VerifiedPutter is what Blocks may also implement to store a chunk the
// handler has already verified against its CID (before forwarding it down
// a pipeline) without hashing it again.
type VerifiedPutter interface {
	// PutVerifiedInSession is PutInSession for data known to match c.
	PutVerifiedInSession(s Session, c cid.Cid, data []byte) error
}

// BlockReader is what a Blocks may also implement: reading a block back.
// A handler whose store can forwards a chunk it already holds along a
// pipeline without having the uploader send its bytes again (it answers
// ALREADY_STORED); without it such a chunk is received again.
type BlockReader interface {
	// Get returns block c's bytes, verified, or an error wrapping
	// ErrNotFound.
	Get(c cid.Cid) ([]byte, error)
}

// Session is a group of blocks an upload pushed before they belong to an
// object, kept until its expiry unless an object binds them.
type Session struct {
	// ID names the session: ClientSessionID or ObjectSessionID.
	ID []byte
	// Bag is the bag every block of the session is for.
	Bag string
	// Expiry is when the session's unbound blocks may be deleted.
	Expiry time.Time
}

// ChunkRef names one chunk of an object: its CID and length.
type ChunkRef struct {
	CID  cid.Cid
	Size uint64
}

// Object is a data object a BIND records: its bag, its ID on chain, its
// content ID (the DAG root), its size and its chunks in order.
type Object struct {
	Bag    string
	ID     uint64
	Root   cid.Cid
	Size   uint64
	Chunks []ChunkRef
}

// Errors a Blocks implementation returns, which the handler branches on.
var (
	// ErrNotFound means the store does not hold the block.
	ErrNotFound = errors.New("store: block not held")
	// ErrMissingBlocks means an object names chunks the store does not hold.
	ErrMissingBlocks = errors.New("store: object names chunks not held")
	// ErrCIDMismatch means bytes do not hash to their CID. It is
	// chunker.ErrCIDMismatch.
	ErrCIDMismatch = chunker.ErrCIDMismatch
)

// Session IDs the handler gives Blocks: an uploader's streamed session is
// 's' and its 16 bytes; the chunks pushed for a registered object before its
// BIND are grouped under 'o' and the object ID. Both are kept until the BIND
// or their expiry.

// ClientSessionID is the block store session of a streamed upload's session.
func ClientSessionID(s []byte) []byte { return append([]byte{'s'}, s...) }

// IsClientSessionID reports whether a block store session ID is a streamed
// upload's (ClientSessionID).
func IsClientSessionID(id []byte) bool { return len(id) == 1+SessionIDLength && id[0] == 's' }

// ObjectSessionID is the block store session of the chunks pushed for
// registered object obj before its BIND.
func ObjectSessionID(obj uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'o'}, obj)
}

func clientSessionIDOrNil(s []byte) []byte {
	if len(s) == 0 {
		return nil
	}
	return ClientSessionID(s)
}
