package contracts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
)

// Directory is what this package reads from the data directory.
// *chain.Client implements it.
type Directory interface {
	Member(ctx context.Context, id chain.MemberID) (chain.Member, error)
	Bag(ctx context.Context, id chain.BagID) (chain.Bag, error)
	StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error)
	Worker(ctx context.Context, g chain.Group, id chain.WorkerID) (chain.Worker, error)
}

// Authority answers a provider's questions about the chain before it offers
// or stores. The provider node implements it (NewChainAuthority is one
// implementation over a Directory).
type Authority interface {
	// CheckMember returns nil when acct is the controller account of
	// member on chain, and an error wrapping ErrNotMember otherwise.
	CheckMember(ctx context.Context, acct chain.Account, member chain.MemberID) error
	// CheckBag returns nil when the chain assigns bag to the provider's
	// bucket and renter is the bag's owner (the one account that may
	// register its objects, so the only one whose upload can be bound);
	// otherwise an error wrapping ErrNotAuthorised or ErrNotOwner.
	CheckBag(ctx context.Context, bag chain.BagID, renter chain.Account) error
}

// Room reserves what a contract needs on a provider: voucher room on chain
// and free disk, counted across every open contract and upload session. The
// provider node implements it.
type Room interface {
	// Fits returns nil when c could be reserved now, or an error wrapping
	// ErrNoRoom (or ErrMalformed: c is larger than any object the chain
	// takes); a provider asks before it offers.
	Fits(ctx context.Context, c *Contract) error
	// Reserve sets the room aside for the consigned contract c and returns
	// the grant that opens its upload, or an error wrapping ErrNoRoom or
	// ErrMalformed.
	Reserve(ctx context.Context, c *Contract) (Grant, error)
}

// RoomReleaser is what a Room may also implement to take a contract's room
// back before its grant lapses (*Ledger does): once the upload is bound to
// a registered object, the bucket's voucher counts it instead.
type RoomReleaser interface {
	Release(id ID)
}

// Grant is what the store protocol needs to open a consigned contract's
// upload: the session the provider accepts chunks under, the room reserved
// and when the grant lapses — one grant TTL after the CONSIGN or after the
// session's last chunk (Responder.ExtendGrant), never past the contract's
// end.
type Grant struct {
	ContractID ID
	Session    [16]byte
	Bag        chain.BagID
	MaxBytes   uint64
	Expires    time.Time
	// Renter is the renter's peer: the one peer that may drop the session
	// (the providers a pipeline forwards through learn its ID too).
	Renter peer.ID
	// RenterKey is the public key the CONSIGN's connection authenticated
	// for Renter: it checks the renter's hop tokens (store.SignHopToken)
	// for the grant's whole life, whether or not the renter stays
	// connected, and for key types a peer ID does not hold (RSA, ECDSA).
	// Nil on a grant the renter side keeps.
	RenterKey crypto.PubKey
	// openUntil is when the provider's store deletes the contract if its
	// upload is not bound by then (Store.PutOpen); zero when not open.
	openUntil time.Time
}

// CheckRenter returns nil when acct controls member on chain, and an error
// wrapping ErrNotMember otherwise (or the chain's error when it cannot say).
func CheckRenter(ctx context.Context, dir Directory, acct chain.Account, member chain.MemberID) error {
	m, err := dir.Member(ctx, member)
	if errors.Is(err, chain.ErrNotFound) {
		return fmt.Errorf("%w: member %d does not exist", ErrNotMember, member)
	}
	if err != nil {
		return fmt.Errorf("contracts: read member %d: %w", member, err)
	}
	if m.Controller != acct {
		return fmt.Errorf("%w: account %s is not the controller of member %d", ErrNotMember, acct, member)
	}
	return nil
}

// CheckProvider checks an offered contract's provider against the chain, as
// a renter does before consigning: Bucket is a storage bucket of the bag,
// Worker is its active operator, Provider is the worker's role account, the
// operator's published peer ID is ProviderPeer, and the bucket's voucher has
// room for the object (unless the object is registered already, so charged).
// The error wraps ErrNotAuthorised or ErrNoRoom.
func CheckProvider(ctx context.Context, dir Directory, c *Contract) error {
	bag, err := dir.Bag(ctx, c.Bag)
	if err != nil {
		return fmt.Errorf("contracts: read bag %s: %w", c.Bag, err)
	}
	if !bag.HasStorageBucket(c.Bucket) {
		return fmt.Errorf("%w: bucket %d does not store bag %s", ErrNotAuthorised, c.Bucket, c.Bag)
	}
	b, err := dir.StorageBucket(ctx, c.Bucket)
	if err != nil {
		return fmt.Errorf("contracts: read storage bucket %d: %w", c.Bucket, err)
	}
	if b.OperatorStatus != chain.OperatorActive || b.Operator == nil || *b.Operator != c.Worker {
		return fmt.Errorf("%w: worker %d is not the active operator of bucket %d", ErrNotAuthorised, c.Worker, c.Bucket)
	}
	w, err := dir.Worker(ctx, chain.StorageGroup, c.Worker)
	if err != nil {
		return fmt.Errorf("contracts: read storage worker %d: %w", c.Worker, err)
	}
	if w.Account != c.Provider {
		return fmt.Errorf("%w: account %s is not the role account of storage worker %d", ErrNotAuthorised, c.Provider, c.Worker)
	}
	if b.Metadata == nil || b.Metadata.PeerID != c.ProviderPeer.String() {
		return fmt.Errorf("%w: bucket %d's operator published no peer ID %s on chain", ErrNotAuthorised, c.Bucket, c.ProviderPeer)
	}
	if c.Object == 0 && !b.Voucher.Room(1, c.Size) {
		return fmt.Errorf("%w: bucket %d's voucher has no room for %d bytes (%d/%d bytes used)",
			ErrNoRoom, c.Bucket, c.Size, b.Voucher.SizeUsed, b.Voucher.SizeLimit)
	}
	return nil
}

// ChainAuthority is an Authority over a Directory for the provider that
// operates one bucket. Member lookups are cached for a minute, since every
// proposal on a topic asks again; bags that exist are cached for
// bagCacheTTL (a bag just created is never refused from a stale miss).
type ChainAuthority struct {
	dir    Directory
	bucket chain.StorageBucketID
	cache  *memberCache
	bags   *bagCache
}

// NewChainAuthority returns the Authority of the operator of bucket.
func NewChainAuthority(dir Directory, bucket chain.StorageBucketID) *ChainAuthority {
	return &ChainAuthority{dir: dir, bucket: bucket, cache: newMemberCache(dir), bags: newBagCache(dir)}
}

// CheckMember implements Authority.
func (a *ChainAuthority) CheckMember(ctx context.Context, acct chain.Account, member chain.MemberID) error {
	return a.cache.check(ctx, acct, member)
}

// CheckBag implements Authority.
func (a *ChainAuthority) CheckBag(ctx context.Context, bag chain.BagID, renter chain.Account) error {
	b, err := a.bags.get(ctx, bag)
	if errors.Is(err, chain.ErrNotFound) {
		return fmt.Errorf("%w: bag %s does not exist", ErrNotAuthorised, bag)
	}
	if err != nil {
		return fmt.Errorf("contracts: read bag %s: %w", bag, err)
	}
	if !b.HasStorageBucket(a.bucket) {
		return fmt.Errorf("%w: bag %s is not assigned to bucket %d", ErrNotAuthorised, bag, a.bucket)
	}
	if b.Owner != renter {
		return fmt.Errorf("%w: bag %s is owned by %s, not by renter %s; only the bag's owner can register what it stores, so only the owner may contract storage into it",
			ErrNotOwner, bag, b.Owner, renter)
	}
	return nil
}

// bagCache remembers the bags that exist for bagCacheTTL: each proposal
// and request for a bag asks who stores and owns it.
type bagCache struct {
	dir Directory
	mu  sync.Mutex
	m   map[chain.BagID]bagEntry
}

type bagEntry struct {
	bag chain.Bag
	at  time.Time
}

func newBagCache(dir Directory) *bagCache {
	return &bagCache{dir: dir, m: make(map[chain.BagID]bagEntry)}
}

func (c *bagCache) get(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && time.Since(e.at) <= bagCacheTTL {
		return e.bag, nil
	}
	b, err := c.dir.Bag(ctx, id)
	if err != nil {
		return b, err
	}
	c.mu.Lock()
	if len(c.m) >= memberCacheSize {
		clear(c.m) // as the member cache: bounded, refilled on demand
	}
	c.m[id] = bagEntry{bag: b, at: time.Now()}
	c.mu.Unlock()
	return b, nil
}

// memberCache remembers member controllers for memberCacheTTL.
type memberCache struct {
	dir Directory
	mu  sync.Mutex
	m   map[chain.MemberID]memberEntry
}

type memberEntry struct {
	controller chain.Account
	exists     bool
	at         time.Time
}

func newMemberCache(dir Directory) *memberCache {
	return &memberCache{dir: dir, m: make(map[chain.MemberID]memberEntry)}
}

func (c *memberCache) check(ctx context.Context, acct chain.Account, member chain.MemberID) error {
	if c.dir == nil { // nobody's fault but the caller's: not the sender's
		return fmt.Errorf("contracts: no directory to read member %d from", member)
	}
	c.mu.Lock()
	e, ok := c.m[member]
	c.mu.Unlock()
	if !ok || time.Since(e.at) > memberCacheTTL {
		m, err := c.dir.Member(ctx, member)
		switch {
		case errors.Is(err, chain.ErrNotFound):
			e = memberEntry{at: time.Now()}
		case err != nil:
			return fmt.Errorf("contracts: read member %d: %w", member, err)
		default:
			e = memberEntry{controller: m.Controller, exists: true, at: time.Now()}
		}
		c.mu.Lock()
		if len(c.m) >= memberCacheSize {
			clear(c.m) // crude but bounded; a full cache is refilled on demand
		}
		c.m[member] = e
		c.mu.Unlock()
	}
	if !e.exists {
		return fmt.Errorf("%w: member %d does not exist", ErrNotMember, member)
	}
	if e.controller != acct {
		return fmt.Errorf("%w: account %s is not the controller of member %d", ErrNotMember, acct, member)
	}
	return nil
}
