package chain

import (
	"fmt"
	"strconv"
	"strings"
)

// StorageBucketID identifies a storage bucket. IDs start at 0 and are never
// reused.
type StorageBucketID uint64

// String returns the decimal ID.
func (id StorageBucketID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseStorageBucketID parses a decimal storage bucket ID.
func ParseStorageBucketID(s string) (StorageBucketID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("storage bucket ID %q: want a non-negative integer such as 3", s)
	}
	return StorageBucketID(n), nil
}

// FamilyID identifies a distribution bucket family. IDs start at 0 and are
// never reused.
type FamilyID uint64

// String returns the decimal ID.
func (id FamilyID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseFamilyID parses a decimal family ID.
func ParseFamilyID(s string) (FamilyID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("distribution bucket family ID %q: want a non-negative integer such as 0", s)
	}
	return FamilyID(n), nil
}

// DistributionBucketID identifies a distribution bucket: its family and its
// index within the family. Indexes start at 0 and are never reused within a
// family. It is written {familyId}:{bucketIndex}, e.g. "1:3", in text and
// JSON.
type DistributionBucketID struct {
	Family FamilyID
	Index  uint64
}

// String returns "{familyId}:{bucketIndex}".
func (id DistributionBucketID) String() string {
	return fmt.Sprintf("%d:%d", id.Family, id.Index)
}

// ParseDistributionBucketID parses "{familyId}:{bucketIndex}".
func ParseDistributionBucketID(s string) (DistributionBucketID, error) {
	f, i, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return DistributionBucketID{}, fmt.Errorf("distribution bucket ID %q: want {familyId}:{bucketIndex}, e.g. 0:1", s)
	}
	fn, err1 := strconv.ParseUint(f, 10, 64)
	in, err2 := strconv.ParseUint(i, 10, 64)
	if err1 != nil || err2 != nil {
		return DistributionBucketID{}, fmt.Errorf("distribution bucket ID %q: want {familyId}:{bucketIndex} with non-negative integers, e.g. 0:1", s)
	}
	return DistributionBucketID{Family: FamilyID(fn), Index: in}, nil
}

// MarshalText writes "{familyId}:{bucketIndex}".
func (id DistributionBucketID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses "{familyId}:{bucketIndex}".
func (id *DistributionBucketID) UnmarshalText(b []byte) error {
	v, err := ParseDistributionBucketID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Less orders distribution bucket IDs by family, then index.
func (id DistributionBucketID) Less(o DistributionBucketID) bool {
	if id.Family != o.Family {
		return id.Family < o.Family
	}
	return id.Index < o.Index
}

// ObjectID identifies a data object. IDs are global, start at 0 and increase.
type ObjectID uint64

// String returns the decimal ID.
func (id ObjectID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseObjectID parses a decimal object ID.
func ParseObjectID(s string) (ObjectID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("data object ID %q: want a non-negative integer", s)
	}
	return ObjectID(n), nil
}

// MemberID identifies a member. IDs start at 0.
type MemberID uint64

// String returns the decimal ID.
func (id MemberID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseMemberID parses a decimal member ID.
func ParseMemberID(s string) (MemberID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("member ID %q: want a non-negative integer", s)
	}
	return MemberID(n), nil
}

// ChannelID identifies a channel. IDs start at 0.
type ChannelID uint64

// String returns the decimal ID.
func (id ChannelID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseChannelID parses a decimal channel ID.
func ParseChannelID(s string) (ChannelID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("channel ID %q: want a non-negative integer", s)
	}
	return ChannelID(n), nil
}

// WorkerID identifies a worker within its working group. IDs start at 0 in
// each group.
type WorkerID uint64

// String returns the decimal ID.
func (id WorkerID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseWorkerID parses a decimal worker ID.
func ParseWorkerID(s string) (WorkerID, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("worker ID %q: want a non-negative integer such as 0", s)
	}
	return WorkerID(n), nil
}

// Group is a working group.
type Group string

// The working groups.
const (
	StorageGroup      Group = "storage"
	DistributionGroup Group = "distribution"
)

// ParseGroup parses "storage" or "distribution".
func ParseGroup(s string) (Group, error) {
	switch g := Group(strings.ToLower(strings.TrimSpace(s))); g {
	case StorageGroup, DistributionGroup:
		return g, nil
	}
	return "", fmt.Errorf("working group %q: want storage or distribution", s)
}

// Valid reports whether g is a known working group.
func (g Group) Valid() bool { return g == StorageGroup || g == DistributionGroup }

// DynamicBagType is the kind of a dynamic bag; each kind has its own dynamic
// bag creation policy.
type DynamicBagType string

// The dynamic bag types, named as on the command line (`-t Channel`).
const (
	MemberBagType  DynamicBagType = "Member"
	ChannelBagType DynamicBagType = "Channel"
)

// DynamicBagTypes lists every dynamic bag type in a fixed order.
var DynamicBagTypes = []DynamicBagType{MemberBagType, ChannelBagType}

// ParseDynamicBagType parses "Member" or "Channel" (any case).
func ParseDynamicBagType(s string) (DynamicBagType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "member":
		return MemberBagType, nil
	case "channel":
		return ChannelBagType, nil
	}
	return "", fmt.Errorf("dynamic bag type %q: want Member or Channel", s)
}

// Valid reports whether t is a known dynamic bag type.
func (t DynamicBagType) Valid() bool { return t == MemberBagType || t == ChannelBagType }

// BagID identifies a bag, in its canonical text form:
//
//	static:council
//	static:wg:storage, static:wg:distribution
//	dynamic:member:<memberId>
//	dynamic:channel:<channelId>
//
// Use ParseBagID for input and the constructors for IDs made in code.
type BagID string

// The static bags, present from genesis.
const (
	CouncilBag             BagID = "static:council"
	StorageWorkingGroupBag BagID = "static:wg:storage"
	DistributionGroupBag   BagID = "static:wg:distribution"
)

// StaticBags lists the static bags in a fixed order.
var StaticBags = []BagID{CouncilBag, StorageWorkingGroupBag, DistributionGroupBag}

// WorkingGroupBag returns the static bag of a working group.
func WorkingGroupBag(g Group) BagID { return BagID("static:wg:" + string(g)) }

// MemberBag returns the dynamic bag of a member.
func MemberBag(id MemberID) BagID { return BagID("dynamic:member:" + id.String()) }

// ChannelBag returns the dynamic bag of a channel.
func ChannelBag(id ChannelID) BagID { return BagID("dynamic:channel:" + id.String()) }

const bagFormat = "want static:council, static:wg:storage, static:wg:distribution, dynamic:member:<id> or dynamic:channel:<id>"

// ParseBagID parses a bag ID in the form {bag_type}:{sub_type}:{id}.
func ParseBagID(s string) (BagID, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	bad := func() (BagID, error) { return "", fmt.Errorf("bag ID %q: %s", s, bagFormat) }
	switch {
	case len(parts) == 2 && parts[0] == "static" && parts[1] == "council":
		return CouncilBag, nil
	case len(parts) == 3 && parts[0] == "static" && parts[1] == "wg":
		g, err := ParseGroup(parts[2])
		if err != nil || string(g) != parts[2] {
			return "", fmt.Errorf("bag ID %q: unknown working group %q; %s", s, parts[2], bagFormat)
		}
		return WorkingGroupBag(g), nil
	case len(parts) == 3 && parts[0] == "dynamic" && (parts[1] == "member" || parts[1] == "channel"):
		n, err := strconv.ParseUint(parts[2], 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != parts[2] {
			return "", fmt.Errorf("bag ID %q: the %s ID must be a non-negative integer; %s", s, parts[1], bagFormat)
		}
		if parts[1] == "member" {
			return MemberBag(MemberID(n)), nil
		}
		return ChannelBag(ChannelID(n)), nil
	}
	return bad()
}

// String returns the canonical text form.
func (b BagID) String() string { return string(b) }

// Validate reports whether b is in canonical form.
func (b BagID) Validate() error {
	p, err := ParseBagID(string(b))
	if err != nil {
		return err
	}
	if p != b {
		return fmt.Errorf("bag ID %q is not canonical; write %q", string(b), string(p))
	}
	return nil
}

// IsStatic reports whether b is a static bag.
func (b BagID) IsStatic() bool { return strings.HasPrefix(string(b), "static:") }

// Dynamic returns the dynamic bag type and the member or channel number of a
// dynamic bag; ok is false for static or malformed IDs.
func (b BagID) Dynamic() (t DynamicBagType, id uint64, ok bool) {
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "dynamic" {
		return "", 0, false
	}
	n, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return "", 0, false
	}
	switch parts[1] {
	case "member":
		return MemberBagType, n, true
	case "channel":
		return ChannelBagType, n, true
	}
	return "", 0, false
}
