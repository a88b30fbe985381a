package state

import (
	"slices"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// writeGenesis writes the genesis params, the blacklist and the static
// bags. static:council is owned by the storage lead (Satchel has no
// council), static:wg:storage by the storage lead and
// static:wg:distribution by the distribution lead. Static bags start in no
// buckets; the leads assign them with update-bag.
func writeGenesis(s store, g chain.Genesis, t time.Time) error {
	bl := make([]string, len(g.Blacklist))
	for i, c := range g.Blacklist {
		canon, err := chain.CanonicalContentID(c)
		if err != nil {
			return err
		}
		bl[i] = canon
	}
	slices.Sort(bl)
	bl = slices.Compact(bl)
	limits := g.Limits.WithDefaults()
	if g.AppVersion != 0 && g.AppVersion < VersionAdmission {
		// Invitations come with VersionAdmission; a chain before it has
		// none, as the releases before did.
		limits.OpenMembersPerBlock, limits.InitialInvites = nil, 0
	}
	p := paramsRecord{
		ChainID:          g.ChainID,
		GenesisTime:      t.UTC(),
		StorageLead:      g.StorageLead,
		DistributionLead: g.DistributionLead,
		Limits:           limits,
		UploadingBlocked: g.UploadingBlocked,
		BlacklistSize:    uint64(len(bl)),
	}
	for _, pol := range g.Policies {
		np := chain.DynamicBagPolicy{Type: pol.Type, StorageBuckets: pol.StorageBuckets, Families: map[chain.FamilyID]uint64{}}
		p.setPolicy(np)
	}
	for _, t := range chain.DynamicBagTypes {
		if !slices.ContainsFunc(p.Policies, func(x chain.DynamicBagPolicy) bool { return x.Type == t }) {
			p.setPolicy(chain.DynamicBagPolicy{Type: t, Families: map[chain.FamilyID]uint64{}})
		}
	}
	if err := s.setJSON(keyParams, p); err != nil {
		return err
	}
	if g.AppVersion == 0 || g.AppVersion >= VersionObjectIndex {
		s.c.set(keyObjectsIndexed, []byte{1})
	}
	if g.AppVersion == 0 || g.AppVersion >= VersionAdmission {
		s.c.set(keyAdmission, []byte{1})
	}
	if g.AppVersion == 0 || g.AppVersion >= VersionUpgradeCancel {
		s.c.set(keyUpgradeCancel, []byte{1})
	}
	for _, c := range bl {
		s.c.set(blacklistKey(c), []byte{1})
	}
	owners := map[chain.BagID]chain.Account{
		chain.CouncilBag:             g.StorageLead,
		chain.StorageWorkingGroupBag: g.StorageLead,
		chain.DistributionGroupBag:   g.DistributionLead,
	}
	for _, id := range chain.StaticBags {
		bag := chain.Bag{ID: id, Owner: owners[id], StorageBuckets: []chain.StorageBucketID{}, DistributionBuckets: []chain.DistributionBucketID{}}
		if err := s.setJSON(bagKey(id), bag); err != nil {
			return err
		}
	}
	return nil
}
