package state

import (
	"errors"

	"github.com/satchel-net/satchel/chain"
)

// standing refuses, at mempool admission, a message its signer can never
// execute: a lead's message from another account, a worker's from
// another than its role account, a member's, channel's or bag's from
// another than its owner (leads, role accounts, controllers and owners
// never change). A message naming what committed state does not hold yet
// (a worker, member, channel or bag that a waiting transaction may
// create) is admitted from a known signer only: one with a nonce on
// chain, a transaction waiting, or a role a waiting transaction gives it
// (granted).
// So a dependent sequence of one account in one block is admitted, and a
// new key has nothing to send but create_member; invite_member only from
// a member's controller with invitations left, or the storage lead.
//
// It is not a dry run of the message: what fails only against committed
// state (a bucket created earlier in the same block) is left to the block.
// From VersionAdmission on it also judges block proposals (CheckProposal):
// change it only with a new app version.
func standing(x *execCtx, known, granted bool, msg chain.Msg) error {
	if g, ok := leadGroup(msg); ok {
		_, err := x.requireLead(g)
		return err
	}
	switch m := msg.(type) {
	case chain.MsgCreateMember:
		return nil // bounded by the open member quota instead
	case chain.MsgInviteMember:
		// A controller with invitations left, or the lead (inviteRoom
		// counts what waits).
		_, _, err := x.inviter(m)
		return missing(x, known, err)
	case chain.MsgCreateChannel:
		mem, err := x.member(m.Member)
		if err != nil {
			return missing(x, known, err)
		}
		if x.signer != mem.Controller {
			return chain.Errorf(chain.ErrUnauthorized, "only member %d's controller account %s may create its channels; account %s is not it", mem.ID, mem.Controller, x.signer)
		}
		return nil
	case chain.MsgDeleteChannel:
		return channelStanding(x, known, m.Channel)
	case chain.MsgRegisterDataObjects:
		return bagStanding(x, known, m.Bag, false)
	case chain.MsgDeleteDataObjects:
		return bagStanding(x, known, m.Bag, true)
	case chain.MsgAcceptStorageBucketInvitation:
		return workerStanding(x, known, chain.StorageGroup, m.Worker)
	case chain.MsgSetStorageOperatorMetadata:
		return workerStanding(x, known, chain.StorageGroup, m.Worker)
	case chain.MsgAcceptDistributionBucketInvitation:
		return workerStanding(x, known, chain.DistributionGroup, m.Worker)
	case chain.MsgSetDistributionOperatorMetadata:
		return workerStanding(x, known, chain.DistributionGroup, m.Worker)
	case chain.MsgAcceptPendingDataObjects:
		return acceptorStanding(x, known, granted, m)
	}
	return chain.Errorf(chain.ErrUnknownMsg, "transaction type %s is not handled by this node; upgrade it", msg.Type())
}

// missing answers for a message naming what committed state lacks (err,
// a not-found error): admitted from a known signer (a transaction waiting
// may create it), refused otherwise with err itself — what the block would
// have answered, so callers explain it the same way.
func missing(x *execCtx, known bool, err error) error {
	if !errors.Is(err, chain.ErrNotFound) || !known {
		return err
	}
	return nil
}

func channelStanding(x *execCtx, known bool, id chain.ChannelID) error {
	var ch chain.Channel
	ok, err := x.s.getJSON(channelKey(id), &ch)
	if err != nil {
		return err
	}
	if !ok {
		return missing(x, known, chain.Errorf(chain.ErrChannelNotFound, "channel %d does not exist", id))
	}
	if x.signer != ch.Owner {
		return chain.Errorf(chain.ErrUnauthorized, "only channel %d's owner %s may delete it; account %s is not the owner", ch.ID, ch.Owner, x.signer)
	}
	return nil
}

// bagStanding admits the bag's owner, and the storage lead when lead.
func bagStanding(x *execCtx, known bool, id chain.BagID, lead bool) error {
	bag, err := x.bag(id)
	if err != nil {
		return missing(x, known, err)
	}
	if x.signer == bag.Owner {
		return nil
	}
	if !lead {
		return chain.Errorf(chain.ErrUnauthorized, "only bag %s's owner %s may register objects in it; account %s is not the owner", bag.ID, bag.Owner, x.signer)
	}
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	if x.signer != p.StorageLead {
		return chain.Errorf(chain.ErrUnauthorized, "only bag %s's owner %s (or the storage lead) may delete its objects; account %s is neither", bag.ID, bag.Owner, x.signer)
	}
	return nil
}

func workerStanding(x *execCtx, known bool, g chain.Group, id chain.WorkerID) error {
	w, err := x.worker(g, id)
	if err != nil {
		return missing(x, known, err)
	}
	return x.requireWorkerKey(w)
}

// acceptorStanding admits the worker's role account, the bucket's
// transactor, a transactor a waiting acceptance names (granted), and a
// known signer while the worker or bucket is not in committed state.
func acceptorStanding(x *execCtx, known, granted bool, m chain.MsgAcceptPendingDataObjects) error {
	w, werr := x.worker(chain.StorageGroup, m.Worker)
	if werr == nil && w.Account == x.signer {
		return nil
	}
	b, berr := x.storageBucket(m.Bucket)
	if berr == nil && b.Transactor == x.signer || granted {
		return nil
	}
	switch {
	case werr != nil:
		return missing(x, known, werr)
	case berr != nil:
		return missing(x, known, berr)
	}
	return chain.Errorf(chain.ErrUnauthorized, "only storage bucket %d's transactor account %s (or worker %d's role account %s) may accept its objects; account %s is neither", b.ID, b.Transactor, w.ID, w.Account, x.signer)
}

// leadGroup returns the group whose lead alone may send msg.
func leadGroup(msg chain.Msg) (chain.Group, bool) {
	switch m := msg.(type) {
	case chain.MsgAddWorker:
		return m.Group, true
	case chain.MsgRemoveWorker:
		return m.Group, true
	case chain.MsgCreateStorageBucket, chain.MsgDeleteStorageBucket, chain.MsgUpdateStorageBucketStatus,
		chain.MsgSetStorageBucketVoucherLimits, chain.MsgInviteStorageBucketOperator,
		chain.MsgCancelStorageBucketInvitation, chain.MsgRemoveStorageBucketOperator,
		chain.MsgUpdateBagStorageBuckets, chain.MsgSetStorageBucketsPerBagLimit,
		chain.MsgSetStorageBucketsVoucherMaxLimits, chain.MsgSetStorageDynamicBagPolicy,
		chain.MsgUpdateBlacklist, chain.MsgSetUploadingBlocked, chain.MsgSetMaxDataObjectSize,
		chain.MsgSetPendingObjectExpiry, chain.MsgSetMembersPerBlock,
		chain.MsgSetMemberInvites, chain.MsgSetOpenMembersPerBlock, chain.MsgSetInitialInvites,
		chain.MsgSetValidator, chain.MsgUpgradeAppVersion, chain.MsgCancelAppVersionUpgrade:
		return chain.StorageGroup, true
	case chain.MsgCreateDistributionBucketFamily, chain.MsgDeleteDistributionBucketFamily,
		chain.MsgSetDistributionFamilyMetadata, chain.MsgCreateDistributionBucket,
		chain.MsgDeleteDistributionBucket, chain.MsgUpdateDistributionBucketStatus,
		chain.MsgUpdateDistributionBucketMode, chain.MsgSetDistributionBucketsPerBagLimit,
		chain.MsgUpdateBagDistributionBuckets, chain.MsgSetDistributionDynamicBagPolicy,
		chain.MsgInviteDistributionBucketOperator, chain.MsgCancelDistributionBucketInvitation,
		chain.MsgRemoveDistributionBucketOperator:
		return chain.DistributionGroup, true
	}
	return "", false
}
