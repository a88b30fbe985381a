package state

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/satchel-net/satchel/chain"
)

// placementSeed derives the seed of a new dynamic bag's placement from the
// block it is created in and the bag ID:
// sha256("satchel/placement/v1" || uvarint(len(hash)) || hash ||
// uint64be(height) || bagID).
func placementSeed(b chain.BlockInfo, bag chain.BagID) []byte {
	h := sha256.New()
	h.Write([]byte("satchel/placement/v1"))
	h.Write(binary.AppendUvarint(nil, uint64(len(b.Hash))))
	h.Write(b.Hash)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(b.Height)))
	h.Write([]byte(bag))
	return h.Sum(nil)
}

// drng is a deterministic random stream: sha256(seed || domain ||
// uint64be(counter)) blocks, read 8 bytes at a time.
type drng struct {
	seed    []byte
	domain  string
	counter uint64
	buf     []byte
}

func (r *drng) uint64() uint64 {
	if len(r.buf) < 8 {
		h := sha256.New()
		h.Write(r.seed)
		h.Write([]byte(r.domain))
		h.Write(binary.BigEndian.AppendUint64(nil, r.counter))
		r.counter++
		r.buf = h.Sum(nil)
	}
	v := binary.BigEndian.Uint64(r.buf[:8])
	r.buf = r.buf[8:]
	return v
}

// intn returns a uniform integer in [0, n) by rejection sampling.
func (r *drng) intn(n uint64) uint64 {
	limit := math.MaxUint64 - math.MaxUint64%n
	for {
		if v := r.uint64(); v < limit {
			return v % n
		}
	}
}

// choose picks n of candidates (given in ascending ID order) uniformly at
// random with a partial Fisher–Yates shuffle driven by the seed and domain,
// and returns them in the candidates' order.
func choose[T any](seed []byte, domain string, candidates []T, n int) []T {
	idx := make([]int, len(candidates))
	for i := range idx {
		idx[i] = i
	}
	r := &drng{seed: seed, domain: domain}
	for i := 0; i < n; i++ {
		j := i + int(r.intn(uint64(len(idx)-i)))
		idx[i], idx[j] = idx[j], idx[i]
	}
	picked := idx[:n]
	slices.Sort(picked)
	out := make([]T, n)
	for i, k := range picked {
		out[i] = candidates[k]
	}
	return out
}

// storageCandidates lists the storage buckets a new bag may be placed in:
// accepting new bags and with voucher room left (objects and size).
func (x *execCtx) storageCandidates() ([]chain.StorageBucket, error) {
	all, err := x.s.c.scan(keySBucket)
	if err != nil {
		return nil, err
	}
	var out []chain.StorageBucket
	for _, e := range all {
		var b chain.StorageBucket
		if err := json.Unmarshal(e.value, &b); err != nil {
			return nil, err
		}
		if b.AcceptingNewBags && b.Voucher.ObjectsUsed < b.Voucher.ObjectsLimit && b.Voucher.SizeUsed < b.Voucher.SizeLimit {
			out = append(out, b)
		}
	}
	return out, nil
}

// familyBuckets lists a family's buckets in index order.
func (x *execCtx) familyBuckets(f chain.FamilyID) ([]chain.DistributionBucket, error) {
	all, err := x.s.c.scan(dBucketPrefix(f))
	if err != nil {
		return nil, err
	}
	out := make([]chain.DistributionBucket, 0, len(all))
	for _, e := range all {
		var b chain.DistributionBucket
		if err := json.Unmarshal(e.value, &b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// placement is where a new dynamic bag goes.
type placement struct {
	storage      []chain.StorageBucketID
	distribution []chain.DistributionBucketID
}

// place chooses the buckets of a new dynamic bag per the policy of its
// type: StorageBuckets storage buckets among those accepting new bags with
// voucher room, and for each family of the policy (in ID order) its count
// of that family's buckets accepting new bags. Every choice is
// pseudo-random, seeded by placementSeed. When too few buckets qualify the
// placement fails with ErrTooFewBuckets: a bag is never silently placed in
// fewer buckets than the policy asks.
func (x *execCtx) place(bag chain.BagID, t chain.DynamicBagType) (placement, error) {
	p, err := x.loadParams()
	if err != nil {
		return placement{}, err
	}
	pol := p.policy(t)
	seed := placementSeed(x.block, bag)
	var out placement

	if n := pol.StorageBuckets; n > 0 {
		cands, err := x.storageCandidates()
		if err != nil {
			return placement{}, err
		}
		if uint64(len(cands)) < n {
			ids := make([]string, len(cands))
			for i, c := range cands {
				ids[i] = c.ID.String()
			}
			return placement{}, chain.Errorf(chain.ErrTooFewBuckets,
				"cannot create bag %s: the %s dynamic bag policy asks for %d storage buckets accepting new bags with voucher room, but %d qualify [%s]; ask the storage lead to create or open buckets, or to lower the policy",
				bag, t, n, len(cands), strings.Join(ids, " "))
		}
		for _, b := range choose(seed, "storage", cands, int(n)) {
			out.storage = append(out.storage, b.ID)
		}
	}

	fams := make([]chain.FamilyID, 0, len(pol.Families))
	for f, n := range pol.Families {
		if n > 0 {
			fams = append(fams, f)
		}
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i] < fams[j] })
	for _, f := range fams {
		n := pol.Families[f]
		buckets, err := x.familyBuckets(f)
		if err != nil {
			return placement{}, err
		}
		var cands []chain.DistributionBucketID
		for _, b := range buckets {
			if b.AcceptingNewBags {
				cands = append(cands, b.ID)
			}
		}
		if uint64(len(cands)) < n {
			ids := make([]string, len(cands))
			for i, c := range cands {
				ids[i] = c.String()
			}
			return placement{}, chain.Errorf(chain.ErrTooFewBuckets,
				"cannot create bag %s: the %s dynamic bag policy asks for %d buckets of distribution family %d accepting new bags, but %d qualify [%s]; ask the distribution lead to create or open buckets in family %d, or to lower the policy",
				bag, t, n, f, len(cands), strings.Join(ids, " "), f)
		}
		out.distribution = append(out.distribution, choose(seed, fmt.Sprintf("family/%d", f), cands, int(n))...)
	}
	return out, nil
}

// createDynamicBag creates bag owned by owner, placed by the policy of t.
func (x *execCtx) createDynamicBag(bag chain.BagID, t chain.DynamicBagType, owner chain.Account) error {
	if _, ok, err := x.s.c.get(bagKey(bag)); err != nil {
		return err
	} else if ok {
		return chain.Errorf(chain.ErrAlreadyExists, "bag %s already exists", bag)
	}
	pl, err := x.place(bag, t)
	if err != nil {
		return err
	}
	b := chain.Bag{
		ID:                  bag,
		Owner:               owner,
		StorageBuckets:      append([]chain.StorageBucketID{}, pl.storage...),
		DistributionBuckets: append([]chain.DistributionBucketID{}, pl.distribution...),
		CreatedAt:           x.block.Height,
	}
	for _, id := range pl.storage {
		sb, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		sb.BagsCount++
		if err := x.putStorageBucket(sb); err != nil {
			return err
		}
		x.s.c.set(sBucketBagKey(id, bag), nil)
	}
	for _, id := range pl.distribution {
		db, err := x.distributionBucket(id)
		if err != nil {
			return err
		}
		db.BagsCount++
		if err := x.putDistributionBucket(db); err != nil {
			return err
		}
		x.s.c.set(dBucketBagKey(id, bag), nil)
	}
	if err := x.putBag(b); err != nil {
		return err
	}
	x.emit(chain.BagCreated{Bag: bag, Owner: owner, StorageBuckets: b.StorageBuckets, DistributionBuckets: b.DistributionBuckets})
	return nil
}
