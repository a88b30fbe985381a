package audit

import (
	"errors"
	"fmt"
)

// Errors a challenger branches on. An Outcome's Err wraps one of them.
var (
	// ErrNotHeld means the provider says it does not hold the object or a
	// chunk of it.
	ErrNotHeld = errors.New("audit: provider does not hold the data")
	// ErrCorrupt means the provider holds the data but cannot read it back
	// intact.
	ErrCorrupt = errors.New("audit: provider's copy is corrupt")
	// ErrRefused means the provider refused the challenge (rate limited,
	// over a limit, bad signature, replay).
	ErrRefused = errors.New("audit: challenge refused")
	// ErrBadAnswer means the answer does not prove the data: wrong bytes,
	// a wrong proof, a wrong nonce, a malformed frame.
	ErrBadAnswer = errors.New("audit: answer does not verify")
	// ErrTimeout means the answer did not arrive within AnswerTimeout.
	ErrTimeout = errors.New("audit: answer too late")
	// ErrUnreachable means no stream could be opened to the provider.
	ErrUnreachable = errors.New("audit: provider unreachable")
	// ErrBadSignature means a signed challenge or result does not verify
	// against its signer's peer ID.
	ErrBadSignature = errors.New("audit: bad signature")
	// ErrInvalid means a challenge or result is malformed or stale.
	ErrInvalid = errors.New("audit: invalid message")
	// ErrStale means a result's time is outside ResultWindow of the
	// node's clock. It wraps ErrInvalid.
	ErrStale = fmt.Errorf("%w: result outside the time window", ErrInvalid)
	// ErrReplay means a challenge's nonce was answered before, or a result
	// was heard before.
	ErrReplay = errors.New("audit: replayed challenge")
	// ErrNotFound and ErrCorruptBlock are what a handler's Blocks and
	// Objects return for a block or object not held, and for a block that
	// failed its check.
	ErrNotFound     = errors.New("audit: not held")
	ErrCorruptBlock = errors.New("audit: block corrupt")
)
