package contracts

import (
	"time"

	"github.com/satchel-net/satchel/p2p"
)

// Protocol is the stream protocol of contract negotiation.
const Protocol = p2p.ContractProtocol

// Limits of the contract protocol and of proposals. Every frame is checked
// against its limit before anything is allocated for it.
const (
	// MaxProposalSize bounds a published proposal (the gossipsub message
	// body); the validator rejects anything larger before decoding.
	MaxProposalSize = 2 << 10
	// MaxFrame bounds every frame of /satchel/contract/1.0.0.
	MaxFrame = 8 << 10
	// MaxBagIDLen bounds a bag ID in a proposal or contract.
	MaxBagIDLen = 128
	// MaxRedundancy is the most providers one proposal may ask for.
	MaxRedundancy = 16
	// MaxReason bounds how much of a peer's refusal reason an error repeats.
	MaxReason = 512
	// MaxRenterAddrs bounds the addresses a proposal lists.
	MaxRenterAddrs = 8
	// MaxMirrorSources bounds the sources a MIRROR names.
	MaxMirrorSources = 16
	// MaxMirrors bounds the Mirrorer calls a provider runs at once; a
	// MIRROR beyond it is refused BUSY. The provider node's Mirror returns
	// once the copy is queued on its sync, whose workers bound the copies.
	MaxMirrors = 8
	// MirrorTimeout bounds one Mirrorer call.
	MirrorTimeout = time.Hour
	// EndedRetention is how long a provider keeps a contract after it
	// ended (a renter may still RENEW it meanwhile) before deleting it.
	EndedRetention = 7 * 24 * time.Hour
	// PruneInterval is how often a provider deletes contracts ended
	// longer than EndedRetention ago.
	PruneInterval = time.Hour
	// MaxDuration is the longest a contract may run, about ten years.
	MaxDuration = 3650 * 24 * time.Hour
	// MaxTTL is the longest a proposal takes offers.
	MaxTTL = 10 * time.Minute
	// DefaultTTL is how long a proposal takes offers unless the renter says.
	DefaultTTL = 30 * time.Second
	// MaxClockSkew is how far ahead of a node's clock a proposal's creation
	// time, or a RETRIEVE's, may be.
	MaxClockSkew = 30 * time.Second
	// StreamTimeout bounds one request and its response.
	StreamTimeout = 10 * time.Second
	// DefaultOfferWindow is how long a renter collects offers.
	DefaultOfferWindow = 3 * time.Second
	// MaxPendingOffers bounds the offers a provider keeps waiting for a
	// CONSIGN; a proposal beyond it gets no offer.
	MaxPendingOffers = 1024
	// MaxPendingPerRenter bounds the offers a provider keeps waiting for
	// one renter account's CONSIGN, so one member cannot hold every
	// pending slot; a further proposal of the renter drops its offer that
	// lapses soonest.
	MaxPendingPerRenter = 16
	// PendingOfferTTL bounds how long an offer waits for its CONSIGN,
	// however long its proposal takes offers.
	PendingOfferTTL = time.Minute
	// MaxCollected bounds the offers a renter keeps per proposal.
	MaxCollected = 64
	// GrantTTL is how long a store or read grant stays valid; a store
	// grant slides to GrantTTL past each chunk its session takes. The
	// session keeps its unbound chunks no longer (the provider caps the
	// session's expiry at the grant's end).
	GrantTTL = time.Hour
	// MemberRoomShare is the default share of a provider's room one
	// member's reserved, not yet received, bytes may hold: 1/MemberRoomShare
	// of what the other members' reservations leave of the voucher's free
	// bytes or the free disk, whichever is less; a member with nothing
	// else reserved may always take one window (WithMemberShare).
	MemberRoomShare = 4
	// ReserveWindow is how far ahead of an upload's received bytes its
	// reservation reaches: a CONSIGN reserves this much (or the object,
	// if smaller), and the reservation grows as chunks arrive
	// (WithReserveWindow).
	ReserveWindow = 256 << 20
	// IdleRelease is how long an upload may send no chunk before the part
	// of its reservation not yet received is given back; its grant lives
	// on (WithIdleRelease).
	IdleRelease = 10 * time.Minute
	// MaxOpenPerMember bounds the open reservations (grants not yet bound
	// or lapsed, and MIRRORs within their grant time) one member holds
	// on a provider; a further CONSIGN is refused BUSY.
	MaxOpenPerMember = 16
	// MaxOpenGrants bounds the open reservations of a provider.
	MaxOpenGrants = 1024
	// ValidatorTimeout bounds one proposal's validation, chain reads
	// included; a proposal not validated in time is ignored, not rejected.
	ValidatorTimeout = 5 * time.Second
	// ValidatorConcurrency bounds the validations of one topic in flight.
	ValidatorConcurrency = 64
	// memberCacheTTL is how long a member lookup is reused by the validator.
	memberCacheTTL = time.Minute
	// bagCacheTTL is how long a provider reuses a bag it read (who stores
	// and who owns it) to answer proposals and requests; a bag moved to or
	// from its bucket is seen within it.
	bagCacheTTL = 10 * time.Second
	// memberCacheSize bounds the validator's member cache.
	memberCacheSize = 4096
)
