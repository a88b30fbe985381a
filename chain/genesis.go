package chain

import (
	"errors"
	"fmt"
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

// ValidateContentID checks a content ID's shape: 1 to MaxContentIDLen
// printable ASCII characters without spaces. The chain does not parse CIDs.
func ValidateContentID(c string) error {
	if c == "" || len(c) > MaxContentIDLen {
		return fmt.Errorf("content ID %q: want 1 to %d characters", c, MaxContentIDLen)
	}
	for i := 0; i < len(c); i++ {
		if c[i] <= ' ' || c[i] > '~' {
			return fmt.Errorf("content ID %q: only printable ASCII without spaces", c)
		}
	}
	return nil
}
