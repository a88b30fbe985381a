package state

import (
	"slices"
	"sort"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// paramsRecord is the stored form of chain.Params; the blacklist entries
// live under keyBlacklist.
type paramsRecord struct {
	ChainID          string                   `json:"chainId"`
	GenesisTime      time.Time                `json:"genesisTime"`
	StorageLead      chain.Account            `json:"storageLead"`
	DistributionLead chain.Account            `json:"distributionLead"`
	Limits           chain.Limits             `json:"limits"`
	UploadingBlocked bool                     `json:"uploadingBlocked"`
	Policies         []chain.DynamicBagPolicy `json:"policies"`
	BlacklistSize    uint64                   `json:"blacklistSize"`
}

func (p *paramsRecord) lead(g chain.Group) chain.Account {
	if g == chain.StorageGroup {
		return p.StorageLead
	}
	return p.DistributionLead
}

func (p *paramsRecord) policy(t chain.DynamicBagType) chain.DynamicBagPolicy {
	for _, x := range p.Policies {
		if x.Type == t {
			if x.Families == nil {
				x.Families = map[chain.FamilyID]uint64{}
			}
			return x
		}
	}
	return chain.DynamicBagPolicy{Type: t, Families: map[chain.FamilyID]uint64{}}
}

func (p *paramsRecord) setPolicy(np chain.DynamicBagPolicy) {
	for i, x := range p.Policies {
		if x.Type == np.Type {
			p.Policies[i] = np
			return
		}
	}
	p.Policies = append(p.Policies, np)
	sort.Slice(p.Policies, func(i, j int) bool { return p.Policies[i].Type < p.Policies[j].Type })
}

// familyRecord is the stored form of a distribution bucket family.
type familyRecord struct {
	ID           chain.FamilyID        `json:"id"`
	Metadata     *chain.FamilyMetadata `json:"metadata,omitempty"`
	NextIndex    uint64                `json:"nextIndex"`
	BucketsCount uint64                `json:"bucketsCount"`
}

// workerRecord is a worker with what it operates, for the one-bucket and
// busy rules.
type workerRecord struct {
	chain.Worker
	// StorageBucket is the storage bucket the worker operates or is invited
	// to (at most one).
	StorageBucket *chain.StorageBucketID `json:"storageBucket,omitempty"`
	// DistributionBuckets counts the distribution buckets the worker
	// operates or is invited to.
	DistributionBuckets uint64 `json:"distributionBuckets"`
}

func (w workerRecord) busy() bool { return w.StorageBucket != nil || w.DistributionBuckets > 0 }

func insertSorted[T any](xs []T, x T, less func(a, b T) bool) []T {
	i := sort.Search(len(xs), func(i int) bool { return !less(xs[i], x) })
	return slices.Insert(xs, i, x)
}
