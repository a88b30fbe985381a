package chain

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// DefaultChainID is the chain ID of DefaultGenesis.
const DefaultChainID = "satchel"

// Default limits of DefaultGenesis.
const (
	DefaultStorageBucketsPerBag           = 10
	DefaultDistributionBucketsPerBag      = 20
	DefaultVoucherMaxObjects              = 1_000_000
	DefaultVoucherMaxSize                 = 1 << 40 // 1 TiB
	DefaultMaxDataObjectSize              = 10 << 30
	DefaultMaxBlacklistSize               = 10_000
	DefaultDistributionOperatorsPerBucket = 1
	DefaultMaxObjectsPerTx                = 1_000
	// DefaultPendingObjectExpiry is how many blocks a data object may stay
	// pending: about 2.8 hours at the 100 ms blocks of a busy chain, 28
	// hours at the 1 s empty blocks of an idle one. Enough to upload the
	// largest object (10 GiB) over a slow link; short enough that
	// registrations never uploaded give their voucher room back the same day.
	DefaultPendingObjectExpiry = 100_000
	// DefaultMembersPerBlock is how many members one block may register:
	// plenty for people signing up (10 a block is 100 a second on a busy
	// chain), a known ceiling on how fast a flood of free accounts can
	// grow the directory.
	DefaultMembersPerBlock = 10
)

// Genesis is the initial state of the data directory: the chain ID that
// every transaction signs, the two leads, the limits and the dynamic bag
// policies. The static bags exist from genesis, owned by the leads.
type Genesis struct {
	ChainID          string             `json:"chainId"`
	StorageLead      Account            `json:"storageLead"`
	DistributionLead Account            `json:"distributionLead"`
	Limits           Limits             `json:"limits"`
	UploadingBlocked bool               `json:"uploadingBlocked"`
	Policies         []DynamicBagPolicy `json:"policies"`
	Blacklist        []string           `json:"blacklist,omitempty"`
	// Validators is the genesis validator set. The node fills it from the
	// network's genesis file (CometBFT's validators), not from app_state.
	Validators []Validator `json:"validators,omitempty"`
	// AppVersion is the version of the state machine's rules the chain
	// runs, from the network's genesis (CometBFT's consensus params), not
	// from app_state; the node fills it. 0 means the newest.
	AppVersion uint64 `json:"-"`
}

// DefaultGenesis returns a genesis with the default chain ID and limits.
// New channels are placed in one storage bucket (so a channel cannot be
// created before the storage lead has a bucket accepting new bags) and no
// distribution bucket; member bags in none. The leads change the policies
// with update-dynamic-bag-policy.
func DefaultGenesis(storageLead, distributionLead Account) Genesis {
	return Genesis{
		ChainID:          DefaultChainID,
		StorageLead:      storageLead,
		DistributionLead: distributionLead,
		Limits: Limits{
			StorageBucketsPerBag:           DefaultStorageBucketsPerBag,
			DistributionBucketsPerBag:      DefaultDistributionBucketsPerBag,
			VoucherMaxObjects:              DefaultVoucherMaxObjects,
			VoucherMaxSize:                 DefaultVoucherMaxSize,
			MaxDataObjectSize:              DefaultMaxDataObjectSize,
			MaxBlacklistSize:               DefaultMaxBlacklistSize,
			DistributionOperatorsPerBucket: DefaultDistributionOperatorsPerBucket,
			MaxObjectsPerTx:                DefaultMaxObjectsPerTx,
			PendingObjectExpiry:            DefaultPendingObjectExpiry,
			MembersPerBlock:                DefaultMembersPerBlock,
		},
		Policies: []DynamicBagPolicy{
			{Type: MemberBagType, StorageBuckets: 0, Families: map[FamilyID]uint64{}},
			{Type: ChannelBagType, StorageBuckets: 1, Families: map[FamilyID]uint64{}},
		},
	}
}

// Validate checks the genesis: chain ID, lead accounts, limits, policies
// (no distribution families exist at genesis, so policies name none).
func (g Genesis) Validate() error {
	if g.ChainID == "" || len(g.ChainID) > 64 {
		return errors.New("genesis: chainId must be 1 to 64 characters")
	}
	if err := g.StorageLead.Validate(); err != nil {
		return fmt.Errorf("genesis: storageLead: %w", err)
	}
	if err := g.DistributionLead.Validate(); err != nil {
		return fmt.Errorf("genesis: distributionLead: %w", err)
	}
	if err := g.Limits.Validate(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	seen := map[DynamicBagType]bool{}
	for _, p := range g.Policies {
		if !p.Type.Valid() {
			return fmt.Errorf("genesis: policy type %q: want Member or Channel", p.Type)
		}
		if seen[p.Type] {
			return fmt.Errorf("genesis: two policies for %s", p.Type)
		}
		seen[p.Type] = true
		if p.StorageBuckets > g.Limits.StorageBucketsPerBag {
			return fmt.Errorf("genesis: policy %s asks for %d storage buckets, above storageBucketsPerBag %d", p.Type, p.StorageBuckets, g.Limits.StorageBucketsPerBag)
		}
		for f, n := range p.Families {
			if n > 0 {
				return fmt.Errorf("genesis: policy %s names distribution family %d, but no family exists at genesis", p.Type, f)
			}
		}
	}
	if g.Limits.PendingObjectExpiry > MaxPendingObjectExpiry {
		return fmt.Errorf("genesis: pendingObjectExpiry %d blocks is above the most, %d", g.Limits.PendingObjectExpiry, MaxPendingObjectExpiry)
	}
	if uint64(len(g.Blacklist)) > g.Limits.MaxBlacklistSize {
		return fmt.Errorf("genesis: blacklist has %d entries, above maxBlacklistSize %d", len(g.Blacklist), g.Limits.MaxBlacklistSize)
	}
	for _, c := range g.Blacklist {
		if err := ValidateContentID(c); err != nil {
			return fmt.Errorf("genesis: blacklist: %w", err)
		}
	}
	return nil
}

// ValidateContentID checks that c is a content ID the data directory
// accepts: at most MaxContentIDLen characters that parse as a CID (v0 or v1,
// in any multibase). Errors carry ErrBadContentID's code.
func ValidateContentID(c string) error {
	_, err := CanonicalContentID(c)
	return err
}

// CanonicalContentID parses c as a CID and returns its canonical form, the
// one the data directory stores, compares and emits: CIDv1 in lower-case
// base32 ("bafy…", "bafk…"). A CIDv0 ("Qm…", base58) becomes the CIDv1
// dag-pb CID of the same multihash; CIDv1 in another multibase (base58btc
// "z…", upper-case base32 "B…", base36 "k…") is re-encoded. Two spellings
// of one CID have one canonical form, so the blacklist catches every
// spelling. Errors carry ErrBadContentID's code.
func CanonicalContentID(c string) (string, error) {
	if c == "" || len(c) > MaxContentIDLen {
		return "", Errorf(ErrBadContentID, "content ID %q: want a CID of 1 to %d characters, such as bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", truncate(c, 80), MaxContentIDLen)
	}
	id, err := cid.Decode(c)
	if err != nil {
		return "", Errorf(ErrBadContentID, "content ID %q is not a CID (%v); give the CID `satchel cid FILE` prints", truncate(c, 80), err)
	}
	switch id.Version() {
	case 0:
		id = cid.NewCidV1(cid.DagProtobuf, id.Hash())
	case 1:
	default:
		return "", Errorf(ErrBadContentID, "content ID %q is a CID version %d; want CIDv0 or CIDv1", truncate(c, 80), id.Version())
	}
	return id.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
