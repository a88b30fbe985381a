package chain

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Bag is a collection of data objects with the buckets that store and
// distribute it.
type Bag struct {
	ID BagID `json:"id"`
	// Owner may register and delete the bag's objects: the controller account
	// of the member (or of the channel's member) for dynamic bags, the group
	// lead for static bags (the storage lead for static:council).
	Owner               Account                `json:"owner"`
	StorageBuckets      []StorageBucketID      `json:"storageBuckets"`
	DistributionBuckets []DistributionBucketID `json:"distributionBuckets"`
	// ObjectsCount and ObjectsSize are the number and total size of the bag's
	// data objects (pending and accepted); every storage bucket of the bag
	// charges them to its voucher.
	ObjectsCount uint64 `json:"objectsCount"`
	ObjectsSize  uint64 `json:"objectsSize"`
	CreatedAt    int64  `json:"createdAt"`
}

// HasStorageBucket reports whether the bag is stored by bucket id.
func (b Bag) HasStorageBucket(id StorageBucketID) bool { return slices.Contains(b.StorageBuckets, id) }

// HasDistributionBucket reports whether the bag is distributed by bucket id.
func (b Bag) HasDistributionBucket(id DistributionBucketID) bool {
	return slices.Contains(b.DistributionBuckets, id)
}

// Voucher is a storage bucket's capacity: limits set by the storage lead
// and the use charged by the bags assigned to it.
type Voucher struct {
	ObjectsLimit uint64 `json:"objectsLimit"`
	SizeLimit    uint64 `json:"sizeLimit"`
	ObjectsUsed  uint64 `json:"objectsUsed"`
	SizeUsed     uint64 `json:"sizeUsed"`
}

// Room reports whether objects more objects of size more bytes fit.
func (v Voucher) Room(objects, size uint64) bool {
	return v.ObjectsUsed+objects >= v.ObjectsUsed && v.SizeUsed+size >= v.SizeUsed &&
		v.ObjectsUsed+objects <= v.ObjectsLimit && v.SizeUsed+size <= v.SizeLimit
}

// OperatorStatus is the operator state of a storage bucket.
type OperatorStatus string

// Storage bucket operator states.
const (
	OperatorMissing OperatorStatus = "missing"
	OperatorInvited OperatorStatus = "invited"
	OperatorActive  OperatorStatus = "active"
)

// StorageBucket is a storage bucket: its voucher, its operator and its bags.
type StorageBucket struct {
	ID               StorageBucketID `json:"id"`
	AcceptingNewBags bool            `json:"acceptingNewBags"`
	Voucher          Voucher         `json:"voucher"`
	OperatorStatus   OperatorStatus  `json:"operatorStatus"`
	// Operator is the invited (OperatorInvited) or active (OperatorActive)
	// storage worker; nil when OperatorMissing.
	Operator *WorkerID `json:"operator,omitempty"`
	// Transactor is the account the active operator registered to accept
	// pending data objects.
	Transactor Account                  `json:"transactor,omitempty"`
	Metadata   *StorageOperatorMetadata `json:"metadata,omitempty"`
	BagsCount  uint64                   `json:"bagsCount"`
	// Bags lists the bags assigned to the bucket (filled by queries).
	Bags []BagID `json:"bags"`
}

// Location is where an operator's node runs.
type Location struct {
	CountryCode string       `json:"countryCode,omitempty"`
	City        string       `json:"city,omitempty"`
	Coordinates *Coordinates `json:"coordinates,omitempty"`
}

// Coordinates are a latitude and longitude in degrees.
type Coordinates struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

var (
	countryCodeRE     = regexp.MustCompile(`^[A-Z]{2}$`)
	subdivisionCodeRE = regexp.MustCompile(`^[A-Z]{2}-[A-Z0-9]{1,3}$`)
	continentCodes    = []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}
)

// Limits on free-text metadata.
const (
	MaxMetadataText  = 1024
	MaxMultiaddrs    = 32
	MaxLatencyTarget = 32
	MaxAreas         = 256
	MaxContentIDLen  = 256
	MaxHandleLen     = 64
)

// Validate checks the location's codes and coordinates.
func (l *Location) Validate() error {
	if l == nil {
		return nil
	}
	if l.CountryCode != "" && !countryCodeRE.MatchString(l.CountryCode) {
		return fmt.Errorf("location countryCode %q: want an ISO 3166-1 alpha-2 code such as SG", l.CountryCode)
	}
	if len(l.City) > MaxMetadataText {
		return fmt.Errorf("location city is longer than %d bytes", MaxMetadataText)
	}
	if c := l.Coordinates; c != nil {
		if math.IsNaN(c.Latitude) || c.Latitude < -90 || c.Latitude > 90 {
			return fmt.Errorf("location latitude %v: want -90..90", c.Latitude)
		}
		if math.IsNaN(c.Longitude) || c.Longitude < -180 || c.Longitude > 180 {
			return fmt.Errorf("location longitude %v: want -180..180", c.Longitude)
		}
	}
	return nil
}

// StorageOperatorMetadata is what a storage operator publishes about its
// node: the libp2p peer ID and addresses clients dial, and its location.
type StorageOperatorMetadata struct {
	PeerID     string    `json:"peerId,omitempty"`
	Multiaddrs []string  `json:"multiaddrs,omitempty"`
	Location   *Location `json:"location,omitempty"`
	Extra      string    `json:"extra,omitempty"`
}

// Validate checks sizes and the location.
func (m StorageOperatorMetadata) Validate() error {
	if len(m.PeerID) > MaxMetadataText || len(m.Extra) > MaxMetadataText {
		return fmt.Errorf("storage operator metadata: peerId and extra must be at most %d bytes", MaxMetadataText)
	}
	if len(m.Multiaddrs) > MaxMultiaddrs {
		return fmt.Errorf("storage operator metadata: at most %d multiaddrs", MaxMultiaddrs)
	}
	for _, a := range m.Multiaddrs {
		if !strings.HasPrefix(a, "/") || len(a) > MaxMetadataText {
			return fmt.Errorf("storage operator metadata: multiaddr %q must start with / (e.g. /ip4/1.2.3.4/tcp/4001)", a)
		}
	}
	if err := m.Location.Validate(); err != nil {
		return fmt.Errorf("storage operator metadata: %w", err)
	}
	return nil
}

// DistributionOperatorMetadata is what a distribution operator publishes:
// the root endpoint of its HTTP API and its location (the seed's JSON shape).
type DistributionOperatorMetadata struct {
	Endpoint string    `json:"endpoint,omitempty"`
	Location *Location `json:"location,omitempty"`
	Extra    string    `json:"extra,omitempty"`
}

// Validate checks the endpoint URL and the location.
func (m DistributionOperatorMetadata) Validate() error {
	if m.Endpoint != "" {
		u, err := url.Parse(m.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(m.Endpoint) > MaxMetadataText {
			return fmt.Errorf("distribution operator metadata: endpoint %q: want an http(s) URL such as https://example.com/distributor/", m.Endpoint)
		}
	}
	if len(m.Extra) > MaxMetadataText {
		return fmt.Errorf("distribution operator metadata: extra must be at most %d bytes", MaxMetadataText)
	}
	if err := m.Location.Validate(); err != nil {
		return fmt.Errorf("distribution operator metadata: %w", err)
	}
	return nil
}

// Area is one geographic area a family covers; exactly one code is set.
type Area struct {
	ContinentCode   string `json:"continentCode,omitempty"`
	CountryCode     string `json:"countryCode,omitempty"`
	SubdivisionCode string `json:"subdivisionCode,omitempty"`
}

// FamilyMetadata describes a distribution bucket family (the seed's JSON
// shape).
type FamilyMetadata struct {
	Region             string   `json:"region,omitempty"`
	Description        string   `json:"description,omitempty"`
	LatencyTestTargets []string `json:"latencyTestTargets"`
	Areas              []Area   `json:"areas"`
}

// Validate checks the areas' codes and text sizes.
func (m FamilyMetadata) Validate() error {
	if len(m.Region) > MaxMetadataText || len(m.Description) > MaxMetadataText {
		return fmt.Errorf("family metadata: region and description must be at most %d bytes", MaxMetadataText)
	}
	if len(m.LatencyTestTargets) > MaxLatencyTarget {
		return fmt.Errorf("family metadata: at most %d latencyTestTargets", MaxLatencyTarget)
	}
	for _, t := range m.LatencyTestTargets {
		if t == "" || len(t) > MaxMetadataText {
			return fmt.Errorf("family metadata: latencyTestTargets entries must be non-empty and at most %d bytes", MaxMetadataText)
		}
	}
	if len(m.Areas) > MaxAreas {
		return fmt.Errorf("family metadata: at most %d areas", MaxAreas)
	}
	for i, a := range m.Areas {
		set := 0
		if a.ContinentCode != "" {
			set++
			if !slices.Contains(continentCodes, a.ContinentCode) {
				return fmt.Errorf("family metadata: areas[%d].continentCode %q: want one of %s", i, a.ContinentCode, strings.Join(continentCodes, ", "))
			}
		}
		if a.CountryCode != "" {
			set++
			if !countryCodeRE.MatchString(a.CountryCode) {
				return fmt.Errorf("family metadata: areas[%d].countryCode %q: want an ISO 3166-1 alpha-2 code such as NO", i, a.CountryCode)
			}
		}
		if a.SubdivisionCode != "" {
			set++
			if !subdivisionCodeRE.MatchString(a.SubdivisionCode) {
				return fmt.Errorf("family metadata: areas[%d].subdivisionCode %q: want an ISO 3166-2 code such as US-CA", i, a.SubdivisionCode)
			}
		}
		if set != 1 {
			return fmt.Errorf("family metadata: areas[%d] must set exactly one of continentCode, countryCode, subdivisionCode", i)
		}
	}
	return nil
}

// DistributionFamily is a distribution bucket family.
type DistributionFamily struct {
	ID       FamilyID        `json:"id"`
	Metadata *FamilyMetadata `json:"metadata,omitempty"`
	// NextIndex is the index the next bucket created in the family gets.
	NextIndex uint64 `json:"nextIndex"`
	// Buckets lists the family's buckets (filled by queries).
	Buckets []DistributionBucket `json:"buckets"`
}

// DistributionOperator is an active operator of a distribution bucket.
type DistributionOperator struct {
	Worker   WorkerID                      `json:"worker"`
	Metadata *DistributionOperatorMetadata `json:"metadata,omitempty"`
}

// DistributionBucket is a distribution bucket.
type DistributionBucket struct {
	ID               DistributionBucketID   `json:"id"`
	AcceptingNewBags bool                   `json:"acceptingNewBags"`
	Distributing     bool                   `json:"distributing"`
	Operators        []DistributionOperator `json:"operators"`
	Invitations      []WorkerID             `json:"invitations"`
	BagsCount        uint64                 `json:"bagsCount"`
	// Bags lists the bags assigned to the bucket (filled by queries).
	Bags []BagID `json:"bags"`
}

// HasOperator reports whether w operates the bucket.
func (b DistributionBucket) HasOperator(w WorkerID) bool {
	return slices.ContainsFunc(b.Operators, func(o DistributionOperator) bool { return o.Worker == w })
}

// DataObject is a stored file: its size and content ID, in one bag.
type DataObject struct {
	ID        ObjectID `json:"id"`
	Bag       BagID    `json:"bag"`
	Size      uint64   `json:"size"`
	ContentID string   `json:"contentId"`
	// Accepted is set when an operator of a storage bucket of the bag has
	// accepted the object (it holds the data).
	Accepted  bool  `json:"accepted"`
	CreatedAt int64 `json:"createdAt"`
	// ExpiresAt is, while the object is pending, the height at the end of
	// which it is removed unless accepted first (0 once accepted, and for
	// objects registered before expiry existed).
	ExpiresAt int64 `json:"expiresAt,omitempty"`
}

// Member is a registered member.
type Member struct {
	ID         MemberID `json:"id"`
	Controller Account  `json:"controller"`
	Handle     string   `json:"handle,omitempty"`
	// Invites is how many members it may still invite (invite_member).
	Invites uint64 `json:"invites,omitempty"`
	// InvitedBy is the member that invited it (nil: registered openly, or
	// invited by the storage lead naming no member of its own).
	InvitedBy *MemberID `json:"invitedBy,omitempty"`
	// InvitedByLead: the storage lead invited it, spending no invitation.
	InvitedByLead bool `json:"invitedByLead,omitempty"`
}

// Channel is a member's channel; its bag is ChannelBag(ID).
type Channel struct {
	ID     ChannelID `json:"id"`
	Member MemberID  `json:"member"`
	Owner  Account   `json:"owner"`
	Title  string    `json:"title,omitempty"`
	Bag    BagID     `json:"bag"`
}

// AccountInfo is an account's replay-protection state: the highest nonce
// used by a committed transaction (0 before the first). The next
// transaction should use Nonce+1.
type AccountInfo struct {
	Account Account `json:"account"`
	Nonce   uint64  `json:"nonce"`
}

// Worker is a member of a working group with its role account.
type Worker struct {
	Group   Group    `json:"group"`
	ID      WorkerID `json:"id"`
	Account Account  `json:"account"`
}

// DynamicBagPolicy says how many buckets a new dynamic bag of Type is
// placed in: StorageBuckets storage buckets, and Families[f] distribution
// buckets of family f.
type DynamicBagPolicy struct {
	Type           DynamicBagType      `json:"type"`
	StorageBuckets uint64              `json:"storageBuckets"`
	Families       map[FamilyID]uint64 `json:"families"`
}

// DistributionBuckets returns the total number of distribution buckets
// the policy asks for.
func (p DynamicBagPolicy) DistributionBuckets() uint64 {
	var n uint64
	for _, c := range p.Families {
		n += c
	}
	return n
}

// Limits are the runtime limits. The leads change them by transaction;
// genesis sets their initial values.
type Limits struct {
	// StorageBucketsPerBag is the most storage buckets a bag may be in.
	StorageBucketsPerBag uint64 `json:"storageBucketsPerBag"`
	// DistributionBucketsPerBag is the most distribution buckets a bag may be in.
	DistributionBucketsPerBag uint64 `json:"distributionBucketsPerBag"`
	// VoucherMaxObjects and VoucherMaxSize bound every storage bucket's
	// voucher limits.
	VoucherMaxObjects uint64 `json:"voucherMaxObjects"`
	VoucherMaxSize    uint64 `json:"voucherMaxSize"`
	// MaxDataObjectSize is the largest data object accepted, in bytes.
	MaxDataObjectSize uint64 `json:"maxDataObjectSize"`
	// MaxBlacklistSize bounds the content ID blacklist (genesis only).
	MaxBlacklistSize uint64 `json:"maxBlacklistSize"`
	// DistributionOperatorsPerBucket bounds operators plus pending
	// invitations of one distribution bucket (genesis only).
	DistributionOperatorsPerBucket uint64 `json:"distributionOperatorsPerBucket"`
	// MaxObjectsPerTx bounds the object IDs or specs in one transaction
	// (genesis only).
	MaxObjectsPerTx uint64 `json:"maxObjectsPerTx"`
	// PendingObjectExpiry is how many blocks a registered data object may
	// stay pending (not accepted by a storage operator). At the end of block
	// CreatedAt+PendingObjectExpiry an object still pending is removed, its
	// voucher use released, and ObjectsDeleted{reason: "expired"} emitted.
	// The storage lead sets it (set_pending_object_expiry); 0 in a genesis
	// means DefaultPendingObjectExpiry. Objects keep the expiry height they
	// were registered with.
	PendingObjectExpiry uint64 `json:"pendingObjectExpiry"`
	// MembersPerBlock bounds the members one block may register
	// (create_member), so the directory grows by at most this many members
	// and member bags per block however many accounts ask. The storage lead
	// sets it (set_members_per_block); 0 in a genesis means
	// DefaultMembersPerBlock.
	MembersPerBlock uint64 `json:"membersPerBlock"`
	// OpenMembersPerBlock bounds, from app version 4, the members one block
	// may register by create_member; MembersPerBlock then bounds those it
	// registers by invite_member, so open registrations never crowd out an
	// invited one. Unset, it is MembersPerBlock (OpenMembers); 0 closes open
	// registration. The storage lead sets it (set_open_members_per_block).
	OpenMembersPerBlock *uint64 `json:"openMembersPerBlock,omitempty"`
	// InitialInvites is how many invitations a new member starts with
	// (from app version 4; default 0). The storage lead sets it
	// (set_initial_invites), and each member's with set_member_invites.
	InitialInvites uint64 `json:"initialInvites,omitempty"`
}

// OpenMembers returns the most members one block may register by
// create_member: OpenMembersPerBlock, or MembersPerBlock when unset.
func (l Limits) OpenMembers() uint64 {
	if l.OpenMembersPerBlock != nil {
		return *l.OpenMembersPerBlock
	}
	return l.MembersPerBlock
}

// WithDefaults returns l with the limits added after a chain's genesis
// format was fixed (0 there) set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.PendingObjectExpiry == 0 {
		l.PendingObjectExpiry = DefaultPendingObjectExpiry
	}
	if l.MembersPerBlock == 0 {
		l.MembersPerBlock = DefaultMembersPerBlock
	}
	return l
}

// Validate checks that every limit is usable.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    uint64
	}{
		{"storageBucketsPerBag", l.StorageBucketsPerBag},
		{"distributionBucketsPerBag", l.DistributionBucketsPerBag},
		{"voucherMaxObjects", l.VoucherMaxObjects},
		{"voucherMaxSize", l.VoucherMaxSize},
		{"maxDataObjectSize", l.MaxDataObjectSize},
		{"distributionOperatorsPerBucket", l.DistributionOperatorsPerBucket},
		{"maxObjectsPerTx", l.MaxObjectsPerTx},
	} {
		if f.v == 0 {
			return fmt.Errorf("limits: %s must be above 0", f.name)
		}
	}
	if l.InitialInvites > MaxInvites {
		return fmt.Errorf("limits: initialInvites %d is above the most, %d", l.InitialInvites, MaxInvites)
	}
	return nil
}

// Params are the data directory's governance state: the leads, the limits,
// the dynamic bag policies, the blacklist and the upload switch.
type Params struct {
	ChainID          string             `json:"chainId"`
	StorageLead      Account            `json:"storageLead"`
	DistributionLead Account            `json:"distributionLead"`
	Limits           Limits             `json:"limits"`
	UploadingBlocked bool               `json:"uploadingBlocked"`
	Policies         []DynamicBagPolicy `json:"policies"`
	Blacklist        []string           `json:"blacklist"`
}

// Policy returns the dynamic bag policy of t (zero counts when unset).
func (p Params) Policy(t DynamicBagType) DynamicBagPolicy {
	for _, x := range p.Policies {
		if x.Type == t {
			return x
		}
	}
	return DynamicBagPolicy{Type: t, Families: map[FamilyID]uint64{}}
}

// Blacklisted reports whether contentID, in any spelling of its CID and
// under any codec of ContentIDCodecs (see BlacklistForms), is on the
// blacklist (which holds canonical content IDs, sorted).
func (p Params) Blacklisted(contentID string) bool {
	canon, err := CanonicalContentID(contentID)
	if err != nil {
		_, ok := slices.BinarySearch(p.Blacklist, contentID)
		return ok
	}
	for _, f := range BlacklistForms(canon) {
		if _, ok := slices.BinarySearch(p.Blacklist, f); ok {
			return true
		}
	}
	return false
}

// Lead returns the lead account of group g.
func (p Params) Lead(g Group) Account {
	switch g {
	case StorageGroup:
		return p.StorageLead
	case DistributionGroup:
		return p.DistributionLead
	}
	return ""
}

// NodeInfo is the state the node's Machine last committed.
type NodeInfo struct {
	ChainID string `json:"chainId"`
	Height  int64  `json:"height"`
	AppHash []byte `json:"appHash"`
}
