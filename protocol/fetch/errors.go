package fetch

import (
	"errors"
	"fmt"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
)

// Errors of the caller side, one per provider answer, and of the stream.
var (
	// ErrNotServed means the provider answered NOT_FOUND: it does not hold
	// the block, or not for a bag it stores.
	ErrNotServed = errors.New("fetch: block not served")
	// ErrBlockFailed means the provider answered FAILED: it holds the block
	// but cannot read it (it is corrupt and being repaired).
	ErrBlockFailed = errors.New("fetch: block unreadable at the provider")
	// ErrRefused means the provider answered REFUSED: the request was
	// malformed or over a limit.
	ErrRefused = errors.New("fetch: request refused")
	// ErrProviderBusy means the provider answered REFUSED because its
	// memory budget for all peers together is spent (not this reader's own
	// share): read from another provider. It wraps ErrRefused.
	ErrProviderBusy = fmt.Errorf("%w: provider busy", ErrRefused)
	// ErrCIDMismatch means a provider sent bytes that do not hash to the
	// block's CID. It is chunker.ErrCIDMismatch.
	ErrCIDMismatch = chunker.ErrCIDMismatch
	// ErrProtocol means the provider answered out of the protocol's order
	// or with a malformed reply. It is p2p.ErrProtocol.
	ErrProtocol = p2p.ErrProtocol
	// ErrStreamClosed means the stream was closed or failed; calls in flight
	// on it fail with an error wrapping it. It is p2p.ErrStreamClosed.
	ErrStreamClosed = p2p.ErrStreamClosed
	// ErrBlockTooLarge means a provider announced a block larger than
	// MaxBlockSize; it wraps ErrProtocol.
	ErrBlockTooLarge = fmt.Errorf("%w: block over the size limit", ErrProtocol)
)

// Errors a Blocks implementation returns, which the handler turns into
// answers: NOT_FOUND and FAILED (with the block reported corrupt).
var (
	// ErrNotFound means the node does not hold the block.
	ErrNotFound = errors.New("fetch: block not held")
	// ErrCorrupt means the node holds the block but its bytes no longer
	// match its CID; the node has quarantined it.
	ErrCorrupt = errors.New("fetch: block corrupt")
)
