package chain

import (
	"encoding/json"
	"fmt"
)

// Event is one state change, as emitted by a transaction: Type names the
// payload type (e.g. "BagCreated") and Data is its JSON. Decode it into the
// payload struct of the same name.
type Event struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// EventPayload is implemented by every event payload type.
type EventPayload interface {
	EventType() string
}

// NewEvent wraps a payload in an Event. Payloads are plain structs, so
// encoding cannot fail; a failure is a programming error and panics.
func NewEvent(p EventPayload) Event {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("chain: encode event %s: %v", p.EventType(), err))
	}
	return Event{Type: p.EventType(), Data: b}
}

// Decode decodes the event's data into v, which should be a pointer to the
// payload type named by e.Type. When v implements EventPayload its type must
// match e.Type.
func (e Event) Decode(v any) error {
	if p, ok := v.(EventPayload); ok && p.EventType() != e.Type {
		return fmt.Errorf("event is %s, not %s", e.Type, p.EventType())
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode event %s: %w", e.Type, err)
	}
	return nil
}

// Bags.

// BagCreated: a bag was created and placed in buckets.
type BagCreated struct {
	Bag                 BagID                  `json:"bag"`
	Owner               Account                `json:"owner"`
	StorageBuckets      []StorageBucketID      `json:"storageBuckets"`
	DistributionBuckets []DistributionBucketID `json:"distributionBuckets"`
}

// StorageBagBucketsUpdated: a bag was added to and removed from storage
// buckets. Providers of Added start syncing it; providers of Removed may
// drop it once it is held elsewhere.
type StorageBagBucketsUpdated struct {
	Bag     BagID             `json:"bag"`
	Added   []StorageBucketID `json:"added"`
	Removed []StorageBucketID `json:"removed"`
}

// DistributionBagBucketsUpdated: a bag was added to and removed from
// distribution buckets.
type DistributionBagBucketsUpdated struct {
	Bag     BagID                  `json:"bag"`
	Added   []DistributionBucketID `json:"added"`
	Removed []DistributionBucketID `json:"removed"`
}

// Data objects.

// ObjectsRegistered: pending data objects were registered in a bag.
type ObjectsRegistered struct {
	Bag     BagID        `json:"bag"`
	Objects []DataObject `json:"objects"`
}

// ObjectsAccepted: the operator of a storage bucket accepted pending
// objects (only the ones that were pending are listed).
type ObjectsAccepted struct {
	Bag     BagID           `json:"bag"`
	Bucket  StorageBucketID `json:"bucket"`
	Worker  WorkerID        `json:"worker"`
	Objects []ObjectID      `json:"objects"`
}

// ObjectsDeleted: data objects were deleted from a bag, and their voucher
// use released. Reason is empty when the bag's owner or the storage lead
// deleted them, DeletedExpired when they stayed pending past their expiry
// height (a block event, not a transaction's: see chain.EndBlocker).
// Either way the objects are gone from the chain.
type ObjectsDeleted struct {
	Bag     BagID      `json:"bag"`
	Objects []ObjectID `json:"objects"`
	Reason  string     `json:"reason,omitempty"`
}

// DeletedExpired is the ObjectsDeleted reason of pending objects removed at
// their expiry height.
const DeletedExpired = "expired"

// Storage buckets.

// StorageBucketCreated: a storage bucket was created.
type StorageBucketCreated struct {
	Bucket           StorageBucketID `json:"bucket"`
	AcceptingNewBags bool            `json:"acceptingNewBags"`
	ObjectsLimit     uint64          `json:"objectsLimit"`
	SizeLimit        uint64          `json:"sizeLimit"`
}

// StorageBucketDeleted: a storage bucket was deleted.
type StorageBucketDeleted struct {
	Bucket StorageBucketID `json:"bucket"`
}

// StorageBucketStatusUpdated: a storage bucket's acceptingNewBags changed.
type StorageBucketStatusUpdated struct {
	Bucket           StorageBucketID `json:"bucket"`
	AcceptingNewBags bool            `json:"acceptingNewBags"`
}

// StorageBucketVoucherLimitsSet: a storage bucket's voucher limits changed.
type StorageBucketVoucherLimitsSet struct {
	Bucket       StorageBucketID `json:"bucket"`
	ObjectsLimit uint64          `json:"objectsLimit"`
	SizeLimit    uint64          `json:"sizeLimit"`
}

// StorageOperatorInvited: a storage worker was invited to operate a bucket.
type StorageOperatorInvited struct {
	Bucket StorageBucketID `json:"bucket"`
	Worker WorkerID        `json:"worker"`
}

// StorageInvitationCancelled: a storage bucket's invitation was cancelled.
type StorageInvitationCancelled struct {
	Bucket StorageBucketID `json:"bucket"`
	Worker WorkerID        `json:"worker"`
}

// StorageInvitationAccepted: a storage worker became a bucket's operator.
type StorageInvitationAccepted struct {
	Bucket     StorageBucketID `json:"bucket"`
	Worker     WorkerID        `json:"worker"`
	Transactor Account         `json:"transactor"`
}

// StorageOperatorRemoved: a storage bucket's operator was removed.
type StorageOperatorRemoved struct {
	Bucket StorageBucketID `json:"bucket"`
	Worker WorkerID        `json:"worker"`
}

// StorageOperatorMetadataSet: a storage operator published its metadata.
type StorageOperatorMetadataSet struct {
	Bucket   StorageBucketID         `json:"bucket"`
	Worker   WorkerID                `json:"worker"`
	Metadata StorageOperatorMetadata `json:"metadata"`
}

// Distribution families and buckets.

// DistributionFamilyCreated: a family was created.
type DistributionFamilyCreated struct {
	Family FamilyID `json:"family"`
}

// DistributionFamilyDeleted: a family was deleted.
type DistributionFamilyDeleted struct {
	Family FamilyID `json:"family"`
}

// DistributionFamilyMetadataSet: a family's metadata changed.
type DistributionFamilyMetadataSet struct {
	Family   FamilyID       `json:"family"`
	Metadata FamilyMetadata `json:"metadata"`
}

// DistributionBucketCreated: a distribution bucket was created.
type DistributionBucketCreated struct {
	Bucket           DistributionBucketID `json:"bucket"`
	AcceptingNewBags bool                 `json:"acceptingNewBags"`
}

// DistributionBucketDeleted: a distribution bucket was deleted.
type DistributionBucketDeleted struct {
	Bucket DistributionBucketID `json:"bucket"`
}

// DistributionBucketStatusUpdated: a bucket's acceptingNewBags changed.
type DistributionBucketStatusUpdated struct {
	Bucket           DistributionBucketID `json:"bucket"`
	AcceptingNewBags bool                 `json:"acceptingNewBags"`
}

// DistributionBucketModeUpdated: a bucket's distributing flag changed.
type DistributionBucketModeUpdated struct {
	Bucket       DistributionBucketID `json:"bucket"`
	Distributing bool                 `json:"distributing"`
}

// DistributionOperatorInvited: a distribution worker was invited.
type DistributionOperatorInvited struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// DistributionInvitationCancelled: an invitation was cancelled.
type DistributionInvitationCancelled struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// DistributionInvitationAccepted: a worker became a bucket's operator.
type DistributionInvitationAccepted struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// DistributionOperatorRemoved: an operator was removed from a bucket.
type DistributionOperatorRemoved struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// DistributionOperatorMetadataSet: an operator published its metadata.
type DistributionOperatorMetadataSet struct {
	Bucket   DistributionBucketID         `json:"bucket"`
	Worker   WorkerID                     `json:"worker"`
	Metadata DistributionOperatorMetadata `json:"metadata"`
}

// Members, channels, working groups.

// MemberCreated: a member was registered (its bag follows in BagCreated).
type MemberCreated struct {
	Member     MemberID `json:"member"`
	Controller Account  `json:"controller"`
	Handle     string   `json:"handle,omitempty"`
	// InvitedBy and InvitedByLead are the new member's (see Member).
	InvitedBy     *MemberID `json:"invitedBy,omitempty"`
	InvitedByLead bool      `json:"invitedByLead,omitempty"`
}

// MemberInvitesUpdated: a member's invitations left changed, set by the
// storage lead or spent by an invite_member.
type MemberInvitesUpdated struct {
	Member  MemberID `json:"member"`
	Invites uint64   `json:"invites"`
}

// ChannelCreated: a channel was created (its bag follows in BagCreated).
type ChannelCreated struct {
	Channel ChannelID `json:"channel"`
	Member  MemberID  `json:"member"`
	Owner   Account   `json:"owner"`
	Bag     BagID     `json:"bag"`
}

// ChannelDeleted: a channel was deleted (its bag follows in BagDeleted).
type ChannelDeleted struct {
	Channel ChannelID `json:"channel"`
	Bag     BagID     `json:"bag"`
}

// BagDeleted: an empty bag was deleted and removed from the buckets listed.
type BagDeleted struct {
	Bag                 BagID                  `json:"bag"`
	StorageBuckets      []StorageBucketID      `json:"storageBuckets"`
	DistributionBuckets []DistributionBucketID `json:"distributionBuckets"`
}

// WorkerAdded: a lead added a worker to its group.
type WorkerAdded struct {
	Group   Group    `json:"group"`
	Worker  WorkerID `json:"worker"`
	Account Account  `json:"account"`
}

// WorkerRemoved: a lead removed a worker from its group.
type WorkerRemoved struct {
	Group  Group    `json:"group"`
	Worker WorkerID `json:"worker"`
}

// Governance.

// DynamicBagPolicyUpdated: a dynamic bag policy changed; Policy is the
// whole new policy.
type DynamicBagPolicyUpdated struct {
	Policy DynamicBagPolicy `json:"policy"`
}

// LimitsUpdated: a limit changed; Limits are all of the new limits.
type LimitsUpdated struct {
	Limits Limits `json:"limits"`
}

// BlacklistUpdated: content IDs were added to or removed from the blacklist.
type BlacklistUpdated struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// UploadingBlockedUpdated: uploading was blocked or unblocked.
type UploadingBlockedUpdated struct {
	Blocked bool `json:"blocked"`
}

// EventType implementations: the type name of each payload.

// EventType implements EventPayload.
func (BagCreated) EventType() string { return "BagCreated" }

// EventType implements EventPayload.
func (StorageBagBucketsUpdated) EventType() string { return "StorageBagBucketsUpdated" }

// EventType implements EventPayload.
func (DistributionBagBucketsUpdated) EventType() string { return "DistributionBagBucketsUpdated" }

// EventType implements EventPayload.
func (ObjectsRegistered) EventType() string { return "ObjectsRegistered" }

// EventType implements EventPayload.
func (ObjectsAccepted) EventType() string { return "ObjectsAccepted" }

// EventType implements EventPayload.
func (ObjectsDeleted) EventType() string { return "ObjectsDeleted" }

// EventType implements EventPayload.
func (StorageBucketCreated) EventType() string { return "StorageBucketCreated" }

// EventType implements EventPayload.
func (StorageBucketDeleted) EventType() string { return "StorageBucketDeleted" }

// EventType implements EventPayload.
func (StorageBucketStatusUpdated) EventType() string { return "StorageBucketStatusUpdated" }

// EventType implements EventPayload.
func (StorageBucketVoucherLimitsSet) EventType() string { return "StorageBucketVoucherLimitsSet" }

// EventType implements EventPayload.
func (StorageOperatorInvited) EventType() string { return "StorageOperatorInvited" }

// EventType implements EventPayload.
func (StorageInvitationCancelled) EventType() string { return "StorageInvitationCancelled" }

// EventType implements EventPayload.
func (StorageInvitationAccepted) EventType() string { return "StorageInvitationAccepted" }

// EventType implements EventPayload.
func (StorageOperatorRemoved) EventType() string { return "StorageOperatorRemoved" }

// EventType implements EventPayload.
func (StorageOperatorMetadataSet) EventType() string { return "StorageOperatorMetadataSet" }

// EventType implements EventPayload.
func (DistributionFamilyCreated) EventType() string { return "DistributionFamilyCreated" }

// EventType implements EventPayload.
func (DistributionFamilyDeleted) EventType() string { return "DistributionFamilyDeleted" }

// EventType implements EventPayload.
func (DistributionFamilyMetadataSet) EventType() string { return "DistributionFamilyMetadataSet" }

// EventType implements EventPayload.
func (DistributionBucketCreated) EventType() string { return "DistributionBucketCreated" }

// EventType implements EventPayload.
func (DistributionBucketDeleted) EventType() string { return "DistributionBucketDeleted" }

// EventType implements EventPayload.
func (DistributionBucketStatusUpdated) EventType() string { return "DistributionBucketStatusUpdated" }

// EventType implements EventPayload.
func (DistributionBucketModeUpdated) EventType() string { return "DistributionBucketModeUpdated" }

// EventType implements EventPayload.
func (DistributionOperatorInvited) EventType() string { return "DistributionOperatorInvited" }

// EventType implements EventPayload.
func (DistributionInvitationCancelled) EventType() string { return "DistributionInvitationCancelled" }

// EventType implements EventPayload.
func (DistributionInvitationAccepted) EventType() string { return "DistributionInvitationAccepted" }

// EventType implements EventPayload.
func (DistributionOperatorRemoved) EventType() string { return "DistributionOperatorRemoved" }

// EventType implements EventPayload.
func (DistributionOperatorMetadataSet) EventType() string { return "DistributionOperatorMetadataSet" }

// EventType implements EventPayload.
func (MemberCreated) EventType() string { return "MemberCreated" }

// EventType implements EventPayload.
func (MemberInvitesUpdated) EventType() string { return "MemberInvitesUpdated" }

// EventType implements EventPayload.
func (ChannelCreated) EventType() string { return "ChannelCreated" }

// EventType implements EventPayload.
func (ChannelDeleted) EventType() string { return "ChannelDeleted" }

// EventType implements EventPayload.
func (BagDeleted) EventType() string { return "BagDeleted" }

// EventType implements EventPayload.
func (WorkerAdded) EventType() string { return "WorkerAdded" }

// EventType implements EventPayload.
func (WorkerRemoved) EventType() string { return "WorkerRemoved" }

// EventType implements EventPayload.
func (DynamicBagPolicyUpdated) EventType() string { return "DynamicBagPolicyUpdated" }

// EventType implements EventPayload.
func (LimitsUpdated) EventType() string { return "LimitsUpdated" }

// EventType implements EventPayload.
func (BlacklistUpdated) EventType() string { return "BlacklistUpdated" }

// EventType implements EventPayload.
func (UploadingBlockedUpdated) EventType() string { return "UploadingBlockedUpdated" }

// AllEventPayloads returns a zero value of every event payload type, in a
// fixed order; a subscriber can use it to map Event.Type to a payload type.
func AllEventPayloads() []EventPayload {
	return []EventPayload{
		BagCreated{}, BagDeleted{}, StorageBagBucketsUpdated{}, DistributionBagBucketsUpdated{},
		ObjectsRegistered{}, ObjectsAccepted{}, ObjectsDeleted{},
		StorageBucketCreated{}, StorageBucketDeleted{}, StorageBucketStatusUpdated{},
		StorageBucketVoucherLimitsSet{}, StorageOperatorInvited{}, StorageInvitationCancelled{},
		StorageInvitationAccepted{}, StorageOperatorRemoved{}, StorageOperatorMetadataSet{},
		DistributionFamilyCreated{}, DistributionFamilyDeleted{}, DistributionFamilyMetadataSet{},
		DistributionBucketCreated{}, DistributionBucketDeleted{}, DistributionBucketStatusUpdated{},
		DistributionBucketModeUpdated{}, DistributionOperatorInvited{}, DistributionInvitationCancelled{},
		DistributionInvitationAccepted{}, DistributionOperatorRemoved{}, DistributionOperatorMetadataSet{},
		MemberCreated{}, MemberInvitesUpdated{}, ChannelCreated{}, ChannelDeleted{}, WorkerAdded{}, WorkerRemoved{},
		DynamicBagPolicyUpdated{}, LimitsUpdated{}, BlacklistUpdated{}, UploadingBlockedUpdated{},
		AppVersionUpgradeScheduled{}, AppVersionUpgradeCancelled{}, AppVersionUpgraded{}, ValidatorUpdated{},
	}
}

// FindEvent returns the first event of payload type T in events, decoded.
// Use it to read what a committed transaction created:
//
//	created, ok := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
func FindEvent[T EventPayload](events []Event) (T, bool) {
	var zero T
	for _, e := range events {
		if e.Type != zero.EventType() {
			continue
		}
		var v T
		if err := json.Unmarshal(e.Data, &v); err == nil {
			return v, true
		}
	}
	return zero, false
}
