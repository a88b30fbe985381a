package state

import (
	"encoding/binary"

	"github.com/satchel-net/satchel/chain"
)

// Key layout. Every state key starts with "s/"; the IAVL tree holds them
// all, so the app hash (its root hash) covers every one.
// Numeric IDs are 8-byte big-endian so keys sort by ID; bag IDs inside
// keys are followed by 0x00 so no bag ID is a prefix of another's keys.
const (
	keyState     = "s/"
	keyParams    = "s/params"
	keySeq       = "s/seq/"
	keyAccount   = "s/acct/"
	keyBlacklist = "s/bl/"
	keyBag       = "s/bag/"
	keyObject    = "s/obj/"
	keySBucket   = "s/sb/"
	keySBucketBg = "s/sbbag/"
	keyFamily    = "s/fam/"
	keyDBucket   = "s/db/"
	keyDBucketBg = "s/dbbag/"
	keyMember    = "s/member/"
	keyChannel   = "s/channel/"
	keyWorker    = "s/worker/"
	// keyObjectsIndexed is present when every object of the state is in
	// the object-ID index (keyObjectBag): written at genesis since app
	// version 3. Without it, an ID the index lacks may be an object from
	// before the index.
	keyObjectsIndexed = "s/objindexed"
	// keyAdmission is present when block proposals are held to mempool
	// admission's deterministic rules (VersionAdmission): written at
	// genesis since app version 4.
	keyAdmission = "s/admission"
	// keyUpgradeCancel is present when a scheduled upgrade may be
	// cancelled (VersionUpgradeCancel): written at genesis since app
	// version 5.
	keyUpgradeCancel = "s/upgradecancel"
)

// Counters (under keySeq).
const (
	seqStorageBucket = "storage-bucket"
	seqFamily        = "family"
	seqObject        = "object"
	seqMember        = "member"
	seqChannel       = "channel"
	seqWorker        = "worker/" // + group
)

func u64(n uint64) string { return string(binary.BigEndian.AppendUint64(nil, n)) }

func accountKey(a chain.Account) string { return keyAccount + string(a) }
func blacklistKey(cid string) string    { return keyBlacklist + cid }
func bagKey(b chain.BagID) string       { return keyBag + string(b) }
func objectPrefix(b chain.BagID) string { return keyObject + string(b) + "\x00" }
func objectKey(b chain.BagID, id chain.ObjectID) string {
	return objectPrefix(b) + u64(uint64(id))
}
func sBucketKey(id chain.StorageBucketID) string { return keySBucket + u64(uint64(id)) }
func sBucketBagPrefix(id chain.StorageBucketID) string {
	return keySBucketBg + u64(uint64(id))
}
func sBucketBagKey(id chain.StorageBucketID, b chain.BagID) string {
	return sBucketBagPrefix(id) + string(b)
}
func familyKey(id chain.FamilyID) string { return keyFamily + u64(uint64(id)) }
func dBucketPrefix(f chain.FamilyID) string {
	return keyDBucket + u64(uint64(f))
}
func dBucketKey(id chain.DistributionBucketID) string {
	return dBucketPrefix(id.Family) + u64(id.Index)
}
func dBucketBagPrefix(id chain.DistributionBucketID) string {
	return keyDBucketBg + u64(uint64(id.Family)) + u64(id.Index)
}
func dBucketBagKey(id chain.DistributionBucketID, b chain.BagID) string {
	return dBucketBagPrefix(id) + string(b)
}
func memberKey(id chain.MemberID) string   { return keyMember + u64(uint64(id)) }
func channelKey(id chain.ChannelID) string { return keyChannel + u64(uint64(id)) }
func workerPrefix(g chain.Group) string    { return keyWorker + string(g) + "/" }
func workerKey(g chain.Group, id chain.WorkerID) string {
	return workerPrefix(g) + u64(uint64(id))
}
