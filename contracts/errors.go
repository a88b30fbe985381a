package contracts

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Errors from this package wrap one of them; the
// text around it names the field or the party at fault.
var (
	// ErrMalformed means a message or contract has a missing, oversized or
	// out-of-range field.
	ErrMalformed = errors.New("contracts: malformed")
	// ErrSignature means a signature does not verify.
	ErrSignature = errors.New("contracts: bad signature")
	// ErrTopicMismatch means a proposal's topic is not the one its own
	// requirements classify as.
	ErrTopicMismatch = errors.New("contracts: topic does not match the requirements")
	// ErrExpired means a proposal stopped taking offers, or a contract ended.
	ErrExpired = errors.New("contracts: expired")
	// ErrClockSkew means a proposal claims to be created further ahead of
	// this node's clock than MaxClockSkew.
	ErrClockSkew = errors.New("contracts: created in the future")
	// ErrNotMember means the renter key is not the controller of the member
	// it names on chain.
	ErrNotMember = errors.New("contracts: renter is not a member on chain")
	// ErrNotAuthorised means the provider does not operate a bucket the
	// chain assigned to the bag.
	ErrNotAuthorised = errors.New("contracts: provider is not authorised for the bag")
	// ErrNotOwner means the renter's account is not the owner of the bag on
	// chain: only the owner can register the bag's objects, so a provider
	// takes contracts into a bag from its owner only.
	ErrNotOwner = errors.New("contracts: renter does not own the bag")
	// ErrNoRoom means the provider has no voucher or disk room for the
	// contract.
	ErrNoRoom = errors.New("contracts: no room")
	// ErrDiskFull is the ErrNoRoom of a provider short of disk room,
	// rather than held back by a policy (its voucher, a member's share):
	// the refusal says so on the wire (disk_full), so a renter can tell.
	// The disk need not be full: its free space, less what open uploads
	// reserve, is short, which may clear as those uploads finish.
	ErrDiskFull = fmt.Errorf("%w: no free disk room at the provider", ErrNoRoom)
	// ErrForbiddenChange means a RENEW changed a field that may not change.
	ErrForbiddenChange = errors.New("contracts: field may not change on renew")
	// ErrNotFound means no such contract or pending offer.
	ErrNotFound = errors.New("contracts: not found")
	// ErrNoOffers means no usable offer came in before the window closed.
	ErrNoOffers = errors.New("contracts: no offers")
	// ErrBusy means a node has too many requests of the kind in flight, or
	// the peer asking too many of them; try again later.
	ErrBusy = errors.New("contracts: busy")
	// ErrClosed means a Gossip was used after (or while) it closed.
	ErrClosed = errors.New("contracts: closed")
	// ErrRefused means the remote side refused a request; the error text
	// carries its reason.
	ErrRefused = errors.New("contracts: refused")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// maxQuoted bounds how much of a bad input an error repeats.
const maxQuoted = 64

func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
