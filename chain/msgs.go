package chain

import (
	"reflect"
	"slices"
)

// Msg is the body of a transaction: one struct per kind of state change.
// Type is the stable tag in the transaction envelope; ValidateBasic checks
// what needs no state (the Machine checks roles and state).
type Msg interface {
	Type() string
	ValidateBasic() error
}

// msgRegistry maps type tags to message types.
var msgRegistry = map[string]reflect.Type{}

func init() {
	for _, m := range AllMsgs() {
		t := reflect.TypeOf(m)
		if _, dup := msgRegistry[m.Type()]; dup {
			panic("chain: duplicate msg type " + m.Type())
		}
		msgRegistry[m.Type()] = t
	}
}

// AllMsgs returns a zero value of every message type, in a fixed order.
func AllMsgs() []Msg {
	return []Msg{
		MsgAddWorker{}, MsgRemoveWorker{},
		MsgCreateMember{}, MsgCreateChannel{}, MsgDeleteChannel{},
		MsgCreateStorageBucket{}, MsgDeleteStorageBucket{}, MsgUpdateStorageBucketStatus{},
		MsgSetStorageBucketVoucherLimits{}, MsgInviteStorageBucketOperator{},
		MsgCancelStorageBucketInvitation{}, MsgRemoveStorageBucketOperator{},
		MsgUpdateBagStorageBuckets{}, MsgSetStorageBucketsPerBagLimit{},
		MsgSetStorageBucketsVoucherMaxLimits{}, MsgSetStorageDynamicBagPolicy{},
		MsgUpdateBlacklist{}, MsgSetUploadingBlocked{}, MsgSetMaxDataObjectSize{},
		MsgSetPendingObjectExpiry{}, MsgSetMembersPerBlock{},
		MsgInviteMember{}, MsgSetMemberInvites{}, MsgSetOpenMembersPerBlock{}, MsgSetInitialInvites{},
		MsgAcceptStorageBucketInvitation{}, MsgSetStorageOperatorMetadata{},
		MsgAcceptPendingDataObjects{},
		MsgCreateDistributionBucketFamily{}, MsgDeleteDistributionBucketFamily{},
		MsgSetDistributionFamilyMetadata{}, MsgCreateDistributionBucket{},
		MsgDeleteDistributionBucket{}, MsgUpdateDistributionBucketStatus{},
		MsgUpdateDistributionBucketMode{}, MsgSetDistributionBucketsPerBagLimit{},
		MsgUpdateBagDistributionBuckets{}, MsgSetDistributionDynamicBagPolicy{},
		MsgInviteDistributionBucketOperator{}, MsgCancelDistributionBucketInvitation{},
		MsgRemoveDistributionBucketOperator{}, MsgAcceptDistributionBucketInvitation{},
		MsgSetDistributionOperatorMetadata{},
		MsgRegisterDataObjects{}, MsgDeleteDataObjects{},
		MsgSetValidator{}, MsgUpgradeAppVersion{}, MsgCancelAppVersionUpgrade{},
	}
}

func invalid(format string, args ...any) error { return Errorf(ErrInvalid, format, args...) }

func checkBag(b BagID) error {
	if err := b.Validate(); err != nil {
		return Errorf(ErrInvalid, "%v", err)
	}
	return nil
}

func checkGroup(g Group) error {
	if !g.Valid() {
		return invalid("working group %q: want storage or distribution", g)
	}
	return nil
}

func checkType(t DynamicBagType) error {
	if !t.Valid() {
		return invalid("dynamic bag type %q: want Member or Channel", t)
	}
	return nil
}

func noDup[T comparable](what string, xs []T) error {
	seen := make(map[T]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return invalid("%s %v is listed twice", what, x)
		}
		seen[x] = true
	}
	return nil
}

// ---- Working groups ----

// MsgAddWorker adds a worker with role account Account to Group. Signed by
// the group's lead. The new worker ID is in the WorkerAdded event.
type MsgAddWorker struct {
	Group   Group   `json:"group"`
	Account Account `json:"account"`
}

// Type implements Msg.
func (MsgAddWorker) Type() string { return "add_worker" }

// ValidateBasic implements Msg.
func (m MsgAddWorker) ValidateBasic() error {
	if err := checkGroup(m.Group); err != nil {
		return err
	}
	if err := m.Account.Validate(); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// MsgRemoveWorker removes a worker from Group. Signed by the group's lead.
// A worker that operates or is invited to a bucket cannot be removed.
type MsgRemoveWorker struct {
	Group  Group    `json:"group"`
	Worker WorkerID `json:"worker"`
}

// Type implements Msg.
func (MsgRemoveWorker) Type() string { return "remove_worker" }

// ValidateBasic implements Msg.
func (m MsgRemoveWorker) ValidateBasic() error { return checkGroup(m.Group) }

// ---- Members and channels ----

// MsgCreateMember registers a member controlled by the signing account and
// creates its bag dynamic:member:<id>, placed by the Member policy. Any
// account may sign it (open registration), but one block registers at most
// Limits.OpenMembers() members this way (ErrMembersPerBlock past that; 0
// closes open registration, leaving MsgInviteMember).
type MsgCreateMember struct {
	Handle string `json:"handle,omitempty"`
}

// Type implements Msg.
func (MsgCreateMember) Type() string { return "create_member" }

// ValidateBasic implements Msg.
func (m MsgCreateMember) ValidateBasic() error {
	if len(m.Handle) > MaxHandleLen {
		return invalid("member handle is longer than %d bytes", MaxHandleLen)
	}
	return nil
}

// MsgInviteMember registers a member controlled by Controller, invited by
// member Member and signed by its controller account, which spends one of
// Member's invitations (Member.Invites; ErrNoInvites when none are left).
// The storage lead invites without limit, naming no Member or one it
// controls. The new member's record names its inviter (InvitedBy) and its
// bag dynamic:member:<id> is created as by MsgCreateMember. One block
// registers at most Limits.MembersPerBlock invited members, a quota open
// registrations never use. From app version 4.
type MsgInviteMember struct {
	Member     *MemberID `json:"member,omitempty"`
	Controller Account   `json:"controller"`
	Handle     string    `json:"handle,omitempty"`
}

// Type implements Msg.
func (MsgInviteMember) Type() string { return "invite_member" }

// ValidateBasic implements Msg.
func (m MsgInviteMember) ValidateBasic() error {
	if err := m.Controller.Validate(); err != nil {
		return invalid("invited member's controller: %v", err)
	}
	if len(m.Handle) > MaxHandleLen {
		return invalid("member handle is longer than %d bytes", MaxHandleLen)
	}
	return nil
}

// MsgSetMemberInvites sets how many members Member may invite
// (Member.Invites), taking invitations away with 0. Storage lead. From app
// version 4.
type MsgSetMemberInvites struct {
	Member  MemberID `json:"member"`
	Invites uint64   `json:"invites"`
}

// Type implements Msg.
func (MsgSetMemberInvites) Type() string { return "set_member_invites" }

// ValidateBasic implements Msg.
func (m MsgSetMemberInvites) ValidateBasic() error {
	if m.Invites > MaxInvites {
		return invalid("member invites %d is above the most, %d", m.Invites, MaxInvites)
	}
	return nil
}

// MaxInvites bounds Member.Invites and Limits.InitialInvites.
const MaxInvites = 1 << 20

// MsgCreateChannel creates a channel of Member, signed by the member's
// controller, and its bag dynamic:channel:<id>, placed by the Channel policy.
type MsgCreateChannel struct {
	Member MemberID `json:"member"`
	Title  string   `json:"title,omitempty"`
}

// Type implements Msg.
func (MsgCreateChannel) Type() string { return "create_channel" }

// ValidateBasic implements Msg.
func (m MsgCreateChannel) ValidateBasic() error {
	if len(m.Title) > MaxMetadataText {
		return invalid("channel title is longer than %d bytes", MaxMetadataText)
	}
	return nil
}

// MsgDeleteChannel deletes a channel and its bag, signed by the channel's
// owner. The bag must hold no data objects (delete them first); it is
// removed from every bucket.
type MsgDeleteChannel struct {
	Channel ChannelID `json:"channel"`
}

// Type implements Msg.
func (MsgDeleteChannel) Type() string { return "delete_channel" }

// ValidateBasic implements Msg.
func (MsgDeleteChannel) ValidateBasic() error { return nil }

// ---- Storage lead ----

// MsgCreateStorageBucket creates a storage bucket with voucher limits,
// optionally inviting a storage worker as its operator. Storage lead.
type MsgCreateStorageBucket struct {
	AcceptingNewBags bool      `json:"acceptingNewBags"`
	ObjectsLimit     uint64    `json:"objectsLimit"`
	SizeLimit        uint64    `json:"sizeLimit"`
	InviteWorker     *WorkerID `json:"inviteWorker,omitempty"`
}

// Type implements Msg.
func (MsgCreateStorageBucket) Type() string { return "create_storage_bucket" }

// ValidateBasic implements Msg.
func (MsgCreateStorageBucket) ValidateBasic() error { return nil }

// MsgDeleteStorageBucket deletes a storage bucket that has no bags, no
// operator and no pending invitation. Storage lead.
type MsgDeleteStorageBucket struct {
	Bucket StorageBucketID `json:"bucket"`
}

// Type implements Msg.
func (MsgDeleteStorageBucket) Type() string { return "delete_storage_bucket" }

// ValidateBasic implements Msg.
func (MsgDeleteStorageBucket) ValidateBasic() error { return nil }

// MsgUpdateStorageBucketStatus sets whether a storage bucket accepts new
// bags. Storage lead.
type MsgUpdateStorageBucketStatus struct {
	Bucket           StorageBucketID `json:"bucket"`
	AcceptingNewBags bool            `json:"acceptingNewBags"`
}

// Type implements Msg.
func (MsgUpdateStorageBucketStatus) Type() string { return "update_storage_bucket_status" }

// ValidateBasic implements Msg.
func (MsgUpdateStorageBucketStatus) ValidateBasic() error { return nil }

// MsgSetStorageBucketVoucherLimits sets a storage bucket's voucher limits,
// which may not exceed the global voucher max limits. Limits below the
// current use are allowed: the bucket is then full. Storage lead.
type MsgSetStorageBucketVoucherLimits struct {
	Bucket       StorageBucketID `json:"bucket"`
	ObjectsLimit uint64          `json:"objectsLimit"`
	SizeLimit    uint64          `json:"sizeLimit"`
}

// Type implements Msg.
func (MsgSetStorageBucketVoucherLimits) Type() string { return "set_storage_bucket_voucher_limits" }

// ValidateBasic implements Msg.
func (MsgSetStorageBucketVoucherLimits) ValidateBasic() error { return nil }

// MsgInviteStorageBucketOperator invites a storage worker to operate a
// bucket that has no operator and no pending invitation; the worker must not
// operate or be invited to another storage bucket. Storage lead.
type MsgInviteStorageBucketOperator struct {
	Bucket StorageBucketID `json:"bucket"`
	Worker WorkerID        `json:"worker"`
}

// Type implements Msg.
func (MsgInviteStorageBucketOperator) Type() string { return "invite_storage_bucket_operator" }

// ValidateBasic implements Msg.
func (MsgInviteStorageBucketOperator) ValidateBasic() error { return nil }

// MsgCancelStorageBucketInvitation cancels a storage bucket's pending
// operator invitation. Storage lead.
type MsgCancelStorageBucketInvitation struct {
	Bucket StorageBucketID `json:"bucket"`
}

// Type implements Msg.
func (MsgCancelStorageBucketInvitation) Type() string { return "cancel_storage_bucket_invitation" }

// ValidateBasic implements Msg.
func (MsgCancelStorageBucketInvitation) ValidateBasic() error { return nil }

// MsgRemoveStorageBucketOperator removes a storage bucket's active
// operator. Storage lead.
type MsgRemoveStorageBucketOperator struct {
	Bucket StorageBucketID `json:"bucket"`
}

// Type implements Msg.
func (MsgRemoveStorageBucketOperator) Type() string { return "remove_storage_bucket_operator" }

// ValidateBasic implements Msg.
func (MsgRemoveStorageBucketOperator) ValidateBasic() error { return nil }

// MsgUpdateBagStorageBuckets adds a bag to and removes it from storage
// buckets. Added buckets must accept new bags and have voucher room for the
// bag's objects; the result must respect the storage buckets-per-bag limit.
// Storage lead.
type MsgUpdateBagStorageBuckets struct {
	Bag    BagID             `json:"bag"`
	Add    []StorageBucketID `json:"add,omitempty"`
	Remove []StorageBucketID `json:"remove,omitempty"`
}

// Type implements Msg.
func (MsgUpdateBagStorageBuckets) Type() string { return "update_bag_storage_buckets" }

// ValidateBasic implements Msg.
func (m MsgUpdateBagStorageBuckets) ValidateBasic() error {
	if err := checkBag(m.Bag); err != nil {
		return err
	}
	if len(m.Add) == 0 && len(m.Remove) == 0 {
		return invalid("update bag %s: name storage buckets to add or remove", m.Bag)
	}
	if err := noDup("storage bucket", append(slices.Clone(m.Add), m.Remove...)); err != nil {
		return err
	}
	return nil
}

// MsgSetStorageBucketsPerBagLimit sets the most storage buckets a bag may
// be in; it may not go below a dynamic bag policy's storage count. Storage
// lead.
type MsgSetStorageBucketsPerBagLimit struct {
	Limit uint64 `json:"limit"`
}

// Type implements Msg.
func (MsgSetStorageBucketsPerBagLimit) Type() string { return "set_storage_buckets_per_bag_limit" }

// ValidateBasic implements Msg.
func (m MsgSetStorageBucketsPerBagLimit) ValidateBasic() error {
	if m.Limit == 0 {
		return invalid("storage buckets per bag limit must be above 0")
	}
	return nil
}

// MsgSetStorageBucketsVoucherMaxLimits sets the global maximum of every
// storage bucket's voucher limits. Storage lead.
type MsgSetStorageBucketsVoucherMaxLimits struct {
	Objects uint64 `json:"objects"`
	Size    uint64 `json:"size"`
}

// Type implements Msg.
func (MsgSetStorageBucketsVoucherMaxLimits) Type() string {
	return "set_storage_buckets_voucher_max_limits"
}

// ValidateBasic implements Msg.
func (m MsgSetStorageBucketsVoucherMaxLimits) ValidateBasic() error {
	if m.Objects == 0 || m.Size == 0 {
		return invalid("voucher max limits must be above 0")
	}
	return nil
}

// MsgSetStorageDynamicBagPolicy sets the number of storage buckets a new
// dynamic bag of Type is placed in. Storage lead.
type MsgSetStorageDynamicBagPolicy struct {
	BagType        DynamicBagType `json:"bagType"`
	StorageBuckets uint64         `json:"storageBuckets"`
}

// Type implements Msg.
func (MsgSetStorageDynamicBagPolicy) Type() string { return "set_storage_dynamic_bag_policy" }

// ValidateBasic implements Msg.
func (m MsgSetStorageDynamicBagPolicy) ValidateBasic() error { return checkType(m.BagType) }

// MsgUpdateBlacklist adds content IDs to and removes them from the
// blacklist. Storage lead. Each content ID must parse as a CID; the
// blacklist holds its canonical form (see CanonicalContentID), so any
// spelling of a CID adds, removes and is caught as the same entry.
type MsgUpdateBlacklist struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Type implements Msg.
func (MsgUpdateBlacklist) Type() string { return "update_blacklist" }

// ValidateBasic implements Msg.
func (m MsgUpdateBlacklist) ValidateBasic() error {
	if len(m.Add) == 0 && len(m.Remove) == 0 {
		return invalid("update blacklist: name content IDs to add or remove")
	}
	all := append(slices.Clone(m.Add), m.Remove...)
	for i, c := range all {
		canon, err := CanonicalContentID(c)
		if err != nil {
			return err
		}
		all[i] = canon
	}
	return noDup("content ID", all)
}

// MsgSetUploadingBlocked blocks or unblocks registering data objects
// network-wide. Storage lead.
type MsgSetUploadingBlocked struct {
	Blocked bool `json:"blocked"`
}

// Type implements Msg.
func (MsgSetUploadingBlocked) Type() string { return "set_uploading_blocked" }

// ValidateBasic implements Msg.
func (MsgSetUploadingBlocked) ValidateBasic() error { return nil }

// MsgSetMaxDataObjectSize sets the largest data object size accepted.
// Storage lead.
type MsgSetMaxDataObjectSize struct {
	Size uint64 `json:"size"`
}

// Type implements Msg.
func (MsgSetMaxDataObjectSize) Type() string { return "set_max_data_object_size" }

// ValidateBasic implements Msg.
func (m MsgSetMaxDataObjectSize) ValidateBasic() error {
	if m.Size == 0 {
		return invalid("max data object size must be above 0")
	}
	return nil
}

// MsgSetPendingObjectExpiry sets how many blocks a newly registered data
// object may stay pending before it is removed and its voucher use
// released (Limits.PendingObjectExpiry). Objects already registered keep
// their expiry height. Storage lead.
type MsgSetPendingObjectExpiry struct {
	Blocks uint64 `json:"blocks"`
}

// Type implements Msg.
func (MsgSetPendingObjectExpiry) Type() string { return "set_pending_object_expiry" }

// ValidateBasic implements Msg.
func (m MsgSetPendingObjectExpiry) ValidateBasic() error {
	if m.Blocks == 0 || m.Blocks > MaxPendingObjectExpiry {
		return invalid("pending object expiry must be 1 to %d blocks", MaxPendingObjectExpiry)
	}
	return nil
}

// MaxPendingObjectExpiry bounds Limits.PendingObjectExpiry (about a year of
// 100 ms blocks), so expiry heights never overflow.
const MaxPendingObjectExpiry = 1 << 28

// MsgSetMembersPerBlock sets the most members one block may register
// (Limits.MembersPerBlock). Storage lead.
type MsgSetMembersPerBlock struct {
	Limit uint64 `json:"limit"`
}

// Type implements Msg.
func (MsgSetMembersPerBlock) Type() string { return "set_members_per_block" }

// ValidateBasic implements Msg.
func (m MsgSetMembersPerBlock) ValidateBasic() error {
	if m.Limit == 0 {
		return invalid("members per block must be above 0")
	}
	return nil
}

// MsgSetOpenMembersPerBlock sets the most members one block may register
// by create_member (Limits.OpenMembersPerBlock); 0 closes open
// registration, leaving invitations. Storage lead. From app version 4.
type MsgSetOpenMembersPerBlock struct {
	Limit uint64 `json:"limit"`
}

// Type implements Msg.
func (MsgSetOpenMembersPerBlock) Type() string { return "set_open_members_per_block" }

// ValidateBasic implements Msg.
func (MsgSetOpenMembersPerBlock) ValidateBasic() error { return nil }

// MsgSetInitialInvites sets how many invitations a member registered from
// now on starts with (Limits.InitialInvites). Storage lead. From app
// version 4.
type MsgSetInitialInvites struct {
	Invites uint64 `json:"invites"`
}

// Type implements Msg.
func (MsgSetInitialInvites) Type() string { return "set_initial_invites" }

// ValidateBasic implements Msg.
func (m MsgSetInitialInvites) ValidateBasic() error {
	if m.Invites > MaxInvites {
		return invalid("initial invites %d is above the most, %d", m.Invites, MaxInvites)
	}
	return nil
}

// InvitationMsg reports whether msg is one of the invitation messages app
// version 4 added; a chain below it refuses them as unknown, as the
// releases before did.
func InvitationMsg(msg Msg) bool {
	switch msg.(type) {
	case MsgInviteMember, MsgSetMemberInvites, MsgSetOpenMembersPerBlock, MsgSetInitialInvites:
		return true
	}
	return false
}

// ---- Storage operator ----

// MsgAcceptStorageBucketInvitation accepts a pending invitation. Signed by
// the invited worker's role account; Transactor is the account that will
// accept pending data objects (empty: the signer).
type MsgAcceptStorageBucketInvitation struct {
	Worker     WorkerID        `json:"worker"`
	Bucket     StorageBucketID `json:"bucket"`
	Transactor Account         `json:"transactor,omitempty"`
}

// Type implements Msg.
func (MsgAcceptStorageBucketInvitation) Type() string { return "accept_storage_bucket_invitation" }

// ValidateBasic implements Msg.
func (m MsgAcceptStorageBucketInvitation) ValidateBasic() error {
	if m.Transactor != "" {
		if err := m.Transactor.Validate(); err != nil {
			return invalid("transactor: %v", err)
		}
	}
	return nil
}

// MsgSetStorageOperatorMetadata publishes the operator's node metadata.
// Signed by the active operator's role account.
type MsgSetStorageOperatorMetadata struct {
	Worker   WorkerID                `json:"worker"`
	Bucket   StorageBucketID         `json:"bucket"`
	Metadata StorageOperatorMetadata `json:"metadata"`
}

// Type implements Msg.
func (MsgSetStorageOperatorMetadata) Type() string { return "set_storage_operator_metadata" }

// ValidateBasic implements Msg.
func (m MsgSetStorageOperatorMetadata) ValidateBasic() error {
	if err := m.Metadata.Validate(); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// MsgAcceptPendingDataObjects marks pending objects of Bag accepted. Signed
// by the transactor account (or the role account) of the active operator
// Worker of Bucket, which must store Bag. Objects already accepted are
// skipped.
type MsgAcceptPendingDataObjects struct {
	Worker  WorkerID        `json:"worker"`
	Bucket  StorageBucketID `json:"bucket"`
	Bag     BagID           `json:"bag"`
	Objects []ObjectID      `json:"objects"`
}

// Type implements Msg.
func (MsgAcceptPendingDataObjects) Type() string { return "accept_pending_data_objects" }

// ValidateBasic implements Msg.
func (m MsgAcceptPendingDataObjects) ValidateBasic() error {
	if err := checkBag(m.Bag); err != nil {
		return err
	}
	if len(m.Objects) == 0 {
		return invalid("accept pending data objects: name at least one object")
	}
	return noDup("data object", m.Objects)
}

// ---- Distribution lead ----

// MsgCreateDistributionBucketFamily creates a family; its ID is in the
// DistributionFamilyCreated event. Distribution lead.
type MsgCreateDistributionBucketFamily struct{}

// Type implements Msg.
func (MsgCreateDistributionBucketFamily) Type() string { return "create_distribution_bucket_family" }

// ValidateBasic implements Msg.
func (MsgCreateDistributionBucketFamily) ValidateBasic() error { return nil }

// MsgDeleteDistributionBucketFamily deletes a family that has no buckets
// and is named by no dynamic bag policy. Distribution lead.
type MsgDeleteDistributionBucketFamily struct {
	Family FamilyID `json:"family"`
}

// Type implements Msg.
func (MsgDeleteDistributionBucketFamily) Type() string { return "delete_distribution_bucket_family" }

// ValidateBasic implements Msg.
func (MsgDeleteDistributionBucketFamily) ValidateBasic() error { return nil }

// MsgSetDistributionFamilyMetadata sets a family's metadata. Distribution
// lead.
type MsgSetDistributionFamilyMetadata struct {
	Family   FamilyID       `json:"family"`
	Metadata FamilyMetadata `json:"metadata"`
}

// Type implements Msg.
func (MsgSetDistributionFamilyMetadata) Type() string { return "set_distribution_family_metadata" }

// ValidateBasic implements Msg.
func (m MsgSetDistributionFamilyMetadata) ValidateBasic() error {
	if err := m.Metadata.Validate(); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// MsgCreateDistributionBucket creates a bucket in Family; its ID is in the
// DistributionBucketCreated event. Distribution lead.
type MsgCreateDistributionBucket struct {
	Family           FamilyID `json:"family"`
	AcceptingNewBags bool     `json:"acceptingNewBags"`
}

// Type implements Msg.
func (MsgCreateDistributionBucket) Type() string { return "create_distribution_bucket" }

// ValidateBasic implements Msg.
func (MsgCreateDistributionBucket) ValidateBasic() error { return nil }

// MsgDeleteDistributionBucket deletes a bucket that has no bags, no
// operators and no pending invitations. Distribution lead.
type MsgDeleteDistributionBucket struct {
	Bucket DistributionBucketID `json:"bucket"`
}

// Type implements Msg.
func (MsgDeleteDistributionBucket) Type() string { return "delete_distribution_bucket" }

// ValidateBasic implements Msg.
func (MsgDeleteDistributionBucket) ValidateBasic() error { return nil }

// MsgUpdateDistributionBucketStatus sets whether a bucket accepts new bags.
// Distribution lead.
type MsgUpdateDistributionBucketStatus struct {
	Bucket           DistributionBucketID `json:"bucket"`
	AcceptingNewBags bool                 `json:"acceptingNewBags"`
}

// Type implements Msg.
func (MsgUpdateDistributionBucketStatus) Type() string { return "update_distribution_bucket_status" }

// ValidateBasic implements Msg.
func (MsgUpdateDistributionBucketStatus) ValidateBasic() error { return nil }

// MsgUpdateDistributionBucketMode sets whether a bucket distributes.
// Distribution lead.
type MsgUpdateDistributionBucketMode struct {
	Bucket       DistributionBucketID `json:"bucket"`
	Distributing bool                 `json:"distributing"`
}

// Type implements Msg.
func (MsgUpdateDistributionBucketMode) Type() string { return "update_distribution_bucket_mode" }

// ValidateBasic implements Msg.
func (MsgUpdateDistributionBucketMode) ValidateBasic() error { return nil }

// MsgSetDistributionBucketsPerBagLimit sets the most distribution buckets a
// bag may be in; it may not go below a dynamic bag policy's total.
// Distribution lead.
type MsgSetDistributionBucketsPerBagLimit struct {
	Limit uint64 `json:"limit"`
}

// Type implements Msg.
func (MsgSetDistributionBucketsPerBagLimit) Type() string {
	return "set_distribution_buckets_per_bag_limit"
}

// ValidateBasic implements Msg.
func (m MsgSetDistributionBucketsPerBagLimit) ValidateBasic() error {
	if m.Limit == 0 {
		return invalid("distribution buckets per bag limit must be above 0")
	}
	return nil
}

// MsgUpdateBagDistributionBuckets adds a bag to and removes it from buckets
// of one family, by bucket index (`update-bag -b dynamic:channel:111 -f 0 -a
// 1 -r 2`). Added buckets must accept new bags; the result must respect the
// distribution buckets-per-bag limit. Distribution lead.
type MsgUpdateBagDistributionBuckets struct {
	Bag    BagID    `json:"bag"`
	Family FamilyID `json:"family"`
	Add    []uint64 `json:"add,omitempty"`
	Remove []uint64 `json:"remove,omitempty"`
}

// Type implements Msg.
func (MsgUpdateBagDistributionBuckets) Type() string { return "update_bag_distribution_buckets" }

// ValidateBasic implements Msg.
func (m MsgUpdateBagDistributionBuckets) ValidateBasic() error {
	if err := checkBag(m.Bag); err != nil {
		return err
	}
	if len(m.Add) == 0 && len(m.Remove) == 0 {
		return invalid("update bag %s: name bucket indexes of family %d to add or remove", m.Bag, m.Family)
	}
	return noDup("bucket index", append(slices.Clone(m.Add), m.Remove...))
}

// MsgSetDistributionDynamicBagPolicy sets, for new dynamic bags of BagType,
// how many buckets of each family they are placed in (`-t Channel -p 1:5
// 2:10`). Families not named get none. Distribution lead.
type MsgSetDistributionDynamicBagPolicy struct {
	BagType  DynamicBagType      `json:"bagType"`
	Families map[FamilyID]uint64 `json:"families"`
}

// Type implements Msg.
func (MsgSetDistributionDynamicBagPolicy) Type() string { return "set_distribution_dynamic_bag_policy" }

// ValidateBasic implements Msg.
func (m MsgSetDistributionDynamicBagPolicy) ValidateBasic() error { return checkType(m.BagType) }

// MsgInviteDistributionBucketOperator invites a distribution worker to
// operate a bucket. Distribution lead.
type MsgInviteDistributionBucketOperator struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// Type implements Msg.
func (MsgInviteDistributionBucketOperator) Type() string {
	return "invite_distribution_bucket_operator"
}

// ValidateBasic implements Msg.
func (MsgInviteDistributionBucketOperator) ValidateBasic() error { return nil }

// MsgCancelDistributionBucketInvitation cancels a pending invitation.
// Distribution lead.
type MsgCancelDistributionBucketInvitation struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// Type implements Msg.
func (MsgCancelDistributionBucketInvitation) Type() string {
	return "cancel_distribution_bucket_invitation"
}

// ValidateBasic implements Msg.
func (MsgCancelDistributionBucketInvitation) ValidateBasic() error { return nil }

// MsgRemoveDistributionBucketOperator removes an operator from a bucket.
// Distribution lead.
type MsgRemoveDistributionBucketOperator struct {
	Bucket DistributionBucketID `json:"bucket"`
	Worker WorkerID             `json:"worker"`
}

// Type implements Msg.
func (MsgRemoveDistributionBucketOperator) Type() string {
	return "remove_distribution_bucket_operator"
}

// ValidateBasic implements Msg.
func (MsgRemoveDistributionBucketOperator) ValidateBasic() error { return nil }

// ---- Distribution operator ----

// MsgAcceptDistributionBucketInvitation accepts a pending invitation.
// Signed by the invited worker's role account.
type MsgAcceptDistributionBucketInvitation struct {
	Worker WorkerID             `json:"worker"`
	Bucket DistributionBucketID `json:"bucket"`
}

// Type implements Msg.
func (MsgAcceptDistributionBucketInvitation) Type() string {
	return "accept_distribution_bucket_invitation"
}

// ValidateBasic implements Msg.
func (MsgAcceptDistributionBucketInvitation) ValidateBasic() error { return nil }

// MsgSetDistributionOperatorMetadata publishes an operator's node metadata
// (endpoint, location, extra). Signed by the operator's role account.
type MsgSetDistributionOperatorMetadata struct {
	Worker   WorkerID                     `json:"worker"`
	Bucket   DistributionBucketID         `json:"bucket"`
	Metadata DistributionOperatorMetadata `json:"metadata"`
}

// Type implements Msg.
func (MsgSetDistributionOperatorMetadata) Type() string {
	return "set_distribution_operator_metadata"
}

// ValidateBasic implements Msg.
func (m MsgSetDistributionOperatorMetadata) ValidateBasic() error {
	if err := m.Metadata.Validate(); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// ---- Data objects ----

// ObjectSpec describes a data object to register. ContentID must parse as
// a CID (v0 or v1, any multibase); the data directory stores and emits its
// canonical form, CIDv1 in lower-case base32 (see CanonicalContentID).
type ObjectSpec struct {
	Size      uint64 `json:"size"`
	ContentID string `json:"contentId"`
}

// MsgRegisterDataObjects registers objects in Bag, signed by the bag's
// owner. Every storage bucket of the bag must have voucher room for all of
// them, or nothing is registered. The new IDs are in the ObjectsRegistered
// event, in the order of Objects.
type MsgRegisterDataObjects struct {
	Bag     BagID        `json:"bag"`
	Objects []ObjectSpec `json:"objects"`
}

// Type implements Msg.
func (MsgRegisterDataObjects) Type() string { return "register_data_objects" }

// ValidateBasic implements Msg. Zero sizes and malformed content IDs are
// reported by the Machine with their own codes.
func (m MsgRegisterDataObjects) ValidateBasic() error {
	if err := checkBag(m.Bag); err != nil {
		return err
	}
	if len(m.Objects) == 0 {
		return invalid("register data objects: name at least one object")
	}
	return nil
}

// MsgDeleteDataObjects deletes objects of Bag, signed by the bag's owner or
// the storage lead, freeing their voucher use in every storage bucket of
// the bag.
type MsgDeleteDataObjects struct {
	Bag     BagID      `json:"bag"`
	Objects []ObjectID `json:"objects"`
}

// Type implements Msg.
func (MsgDeleteDataObjects) Type() string { return "delete_data_objects" }

// ValidateBasic implements Msg.
func (m MsgDeleteDataObjects) ValidateBasic() error {
	if err := checkBag(m.Bag); err != nil {
		return err
	}
	if len(m.Objects) == 0 {
		return invalid("delete data objects: name at least one object")
	}
	return noDup("data object", m.Objects)
}
