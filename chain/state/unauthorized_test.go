package state

import (
	"bytes"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// roleFixture is a state in which every role-gated message has a valid
// form: run by the right signer it succeeds, so a refusal of any other
// signer is about the role and nothing else.
type roleFixture struct {
	h *harness
	// Storage: bEmpty has no bags, operator or invitation (accepting new
	// bags); bInv has an invitation for wInv; bAct is operated by wAct and
	// stores alice's channel bag. wIdle is a storage worker with nothing.
	bEmpty, bInv, bAct chain.StorageBucketID
	wInv, wAct, wIdle  chain.WorkerID
	invKey, actKey     chain.Key
	// Distribution: fEmpty has no buckets; family f holds dEmpty, dInv
	// (invitation for dwInv) and dAct (operated by dwAct).
	fEmpty, f           chain.FamilyID
	dEmpty, dInv, dAct  chain.DistributionBucketID
	dwInv, dwAct, dwIdl chain.WorkerID
	dInvKey, dActKey    chain.Key
	// Alice: member m, channel ch with bag (one pending object obj) and an
	// empty channel chEmpty.
	m           chain.MemberID
	ch, chEmpty chain.ChannelID
	bag         chain.BagID
	obj         chain.ObjectID
}

func newRoleFixture(t *testing.T, mutate ...func(*chain.Genesis)) *roleFixture {
	h := newHarness(t, mutate...)
	fx := &roleFixture{h: h, invKey: testKey("inv worker"), actKey: testKey("act worker"), dInvKey: testKey("d inv worker"), dActKey: testKey("d act worker")}
	fx.bAct, fx.wAct = h.operatedBucket(fx.actKey, 100, 1<<20)
	fx.m = h.member(alice)
	fx.ch = h.channel(alice, fx.m) // placed in bAct, the only bucket accepting bags
	fx.chEmpty = h.channel(alice, fx.m)
	fx.bag = chain.ChannelBag(fx.ch)
	fx.obj = event[chain.ObjectsRegistered](t, h.do(alice, chain.MsgRegisterDataObjects{Bag: fx.bag, Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID("pending")}}})).Objects[0].ID
	fx.bEmpty = h.storageBucket(true, 10, 1000)
	fx.bInv = h.storageBucket(false, 10, 1000)
	fx.wInv = h.addWorker(chain.StorageGroup, fx.invKey)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: fx.bInv, Worker: fx.wInv})
	fx.wIdle = h.addWorker(chain.StorageGroup, testKey("idle worker"))

	fx.fEmpty = h.family()
	fx.f = h.family()
	fx.dEmpty = h.dBucket(fx.f, true)
	fx.dInv = h.dBucket(fx.f, false)
	fx.dAct = h.dBucket(fx.f, false)
	fx.dwInv = h.addWorker(chain.DistributionGroup, fx.dInvKey)
	fx.dwAct = h.addWorker(chain.DistributionGroup, fx.dActKey)
	fx.dwIdl = h.addWorker(chain.DistributionGroup, testKey("idle d worker"))
	h.do(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: fx.dInv, Worker: fx.dwInv})
	h.do(distLead, chain.MsgInviteDistributionBucketOperator{Bucket: fx.dAct, Worker: fx.dwAct})
	h.do(fx.dActKey, chain.MsgAcceptDistributionBucketInvitation{Worker: fx.dwAct, Bucket: fx.dAct})
	if got := h.bag(fx.bag).StorageBuckets; len(got) != 1 || got[0] != fx.bAct {
		t.Fatalf("fixture: channel bag in %v, want [%d]", got, fx.bAct)
	}
	return fx
}

// roleCase is one role-gated message: who may sign it and who may not.
type roleCase struct {
	msg   func(fx *roleFixture) chain.Msg
	right func(fx *roleFixture) chain.Key
	wrong func(fx *roleFixture) []chain.Key
}

func keys(ks ...chain.Key) func(*roleFixture) []chain.Key {
	return func(*roleFixture) []chain.Key { return ks }
}

func key(k chain.Key) func(*roleFixture) chain.Key { return func(*roleFixture) chain.Key { return k } }

// roleCases has every message type but create_member (open to any
// account, bounded per block instead; see TestMembersPerBlock).
func roleCases() map[string]roleCase {
	sLead := func(m func(fx *roleFixture) chain.Msg) roleCase {
		return roleCase{m, key(storageLead), keys(mallory, distLead, alice)}
	}
	dLead := func(m func(fx *roleFixture) chain.Msg) roleCase {
		return roleCase{m, key(distLead), keys(mallory, storageLead, alice)}
	}
	return map[string]roleCase{
		"add_worker/storage": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgAddWorker{Group: chain.StorageGroup, Account: bob.Account()}
		}),
		"add_worker/distribution": dLead(func(*roleFixture) chain.Msg {
			return chain.MsgAddWorker{Group: chain.DistributionGroup, Account: bob.Account()}
		}),
		"remove_worker/storage": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgRemoveWorker{Group: chain.StorageGroup, Worker: fx.wIdle}
		}),
		"remove_worker/distribution": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgRemoveWorker{Group: chain.DistributionGroup, Worker: fx.dwIdl}
		}),
		"create_channel": {func(fx *roleFixture) chain.Msg { return chain.MsgCreateChannel{Member: fx.m} },
			key(alice), keys(mallory, storageLead, bob)},
		"delete_channel": {func(fx *roleFixture) chain.Msg { return chain.MsgDeleteChannel{Channel: fx.chEmpty} },
			key(alice), keys(mallory, storageLead, distLead)},

		"create_storage_bucket": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgCreateStorageBucket{ObjectsLimit: 1, SizeLimit: 1}
		}),
		"delete_storage_bucket": sLead(func(fx *roleFixture) chain.Msg { return chain.MsgDeleteStorageBucket{Bucket: fx.bEmpty} }),
		"update_storage_bucket_status": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgUpdateStorageBucketStatus{Bucket: fx.bEmpty}
		}),
		"set_storage_bucket_voucher_limits": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgSetStorageBucketVoucherLimits{Bucket: fx.bEmpty, ObjectsLimit: 1, SizeLimit: 1}
		}),
		"invite_storage_bucket_operator": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgInviteStorageBucketOperator{Bucket: fx.bEmpty, Worker: fx.wIdle}
		}),
		"cancel_storage_bucket_invitation": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgCancelStorageBucketInvitation{Bucket: fx.bInv}
		}),
		"remove_storage_bucket_operator": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgRemoveStorageBucketOperator{Bucket: fx.bAct}
		}),
		"update_bag_storage_buckets": sLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgUpdateBagStorageBuckets{Bag: chain.CouncilBag, Add: []chain.StorageBucketID{fx.bEmpty}}
		}),
		"set_storage_buckets_per_bag_limit": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetStorageBucketsPerBagLimit{Limit: 3}
		}),
		"set_storage_buckets_voucher_max_limits": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetStorageBucketsVoucherMaxLimits{Objects: 1 << 20, Size: 1 << 40}
		}),
		"set_storage_dynamic_bag_policy": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetStorageDynamicBagPolicy{BagType: chain.MemberBagType, StorageBuckets: 1}
		}),
		"update_blacklist": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgUpdateBlacklist{Add: []string{testCID("evil")}}
		}),
		"set_uploading_blocked":     sLead(func(*roleFixture) chain.Msg { return chain.MsgSetUploadingBlocked{Blocked: true} }),
		"set_max_data_object_size":  sLead(func(*roleFixture) chain.Msg { return chain.MsgSetMaxDataObjectSize{Size: 1 << 30} }),
		"set_pending_object_expiry": sLead(func(*roleFixture) chain.Msg { return chain.MsgSetPendingObjectExpiry{Blocks: 50} }),
		"set_members_per_block":     sLead(func(*roleFixture) chain.Msg { return chain.MsgSetMembersPerBlock{Limit: 5} }),
		"set_member_invites":        sLead(func(fx *roleFixture) chain.Msg { return chain.MsgSetMemberInvites{Member: fx.m, Invites: 3} }),
		"set_open_members_per_block": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetOpenMembersPerBlock{Limit: 0}
		}),
		"set_initial_invites": sLead(func(*roleFixture) chain.Msg { return chain.MsgSetInitialInvites{Invites: 2} }),
		// Alice's member has an invitation (roleGenesis); the lead may not
		// spend it either.
		"invite_member": {func(fx *roleFixture) chain.Msg {
			return chain.MsgInviteMember{Member: &fx.m, Controller: testKey("invitee").Account()}
		}, key(alice), keys(mallory, storageLead, distLead)},
		"set_validator": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetValidator{PubKey: chain.ValidatorKey(bytes.Repeat([]byte{7}, 32)), Power: 10}
		}),
		// On a chain of an older version (roleGenesis): a chain of the
		// newest one has nothing to upgrade to.
		"upgrade_app_version": sLead(func(*roleFixture) chain.Msg {
			return chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: 1000}
		}),
		// Of the upgrade the lead schedules first.
		"cancel_app_version_upgrade": sLead(func(fx *roleFixture) chain.Msg {
			if fx.h != nil {
				fx.h.do(storageLead, chain.MsgUpgradeAppVersion{Version: Version + 1, Height: 1000})
			}
			return chain.MsgCancelAppVersionUpgrade{Version: Version + 1, Height: 1000}
		}),

		"accept_storage_bucket_invitation": {func(fx *roleFixture) chain.Msg {
			return chain.MsgAcceptStorageBucketInvitation{Worker: fx.wInv, Bucket: fx.bInv}
		}, func(fx *roleFixture) chain.Key { return fx.invKey }, func(fx *roleFixture) []chain.Key {
			return []chain.Key{mallory, storageLead, fx.actKey}
		}},
		"set_storage_operator_metadata": {func(fx *roleFixture) chain.Msg {
			return chain.MsgSetStorageOperatorMetadata{Worker: fx.wAct, Bucket: fx.bAct, Metadata: chain.StorageOperatorMetadata{PeerID: "12D3KooW"}}
		}, func(fx *roleFixture) chain.Key { return fx.actKey }, func(fx *roleFixture) []chain.Key {
			return []chain.Key{mallory, storageLead, fx.invKey, alice}
		}},
		"accept_pending_data_objects": {func(fx *roleFixture) chain.Msg {
			return chain.MsgAcceptPendingDataObjects{Worker: fx.wAct, Bucket: fx.bAct, Bag: fx.bag, Objects: []chain.ObjectID{fx.obj}}
		}, func(fx *roleFixture) chain.Key { return fx.actKey }, func(fx *roleFixture) []chain.Key {
			return []chain.Key{mallory, storageLead, alice, fx.invKey}
		}},

		"create_distribution_bucket_family": dLead(func(*roleFixture) chain.Msg { return chain.MsgCreateDistributionBucketFamily{} }),
		"delete_distribution_bucket_family": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgDeleteDistributionBucketFamily{Family: fx.fEmpty}
		}),
		"set_distribution_family_metadata": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgSetDistributionFamilyMetadata{Family: fx.f, Metadata: chain.FamilyMetadata{Region: "eu"}}
		}),
		"create_distribution_bucket": dLead(func(fx *roleFixture) chain.Msg { return chain.MsgCreateDistributionBucket{Family: fx.f} }),
		"delete_distribution_bucket": dLead(func(fx *roleFixture) chain.Msg { return chain.MsgDeleteDistributionBucket{Bucket: fx.dEmpty} }),
		"update_distribution_bucket_status": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgUpdateDistributionBucketStatus{Bucket: fx.dEmpty}
		}),
		"update_distribution_bucket_mode": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgUpdateDistributionBucketMode{Bucket: fx.dEmpty, Distributing: false}
		}),
		"set_distribution_buckets_per_bag_limit": dLead(func(*roleFixture) chain.Msg {
			return chain.MsgSetDistributionBucketsPerBagLimit{Limit: 5}
		}),
		"update_bag_distribution_buckets": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgUpdateBagDistributionBuckets{Bag: chain.CouncilBag, Family: fx.f, Add: []uint64{fx.dEmpty.Index}}
		}),
		"set_distribution_dynamic_bag_policy": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgSetDistributionDynamicBagPolicy{BagType: chain.ChannelBagType, Families: map[chain.FamilyID]uint64{}}
		}),
		"invite_distribution_bucket_operator": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgInviteDistributionBucketOperator{Bucket: fx.dEmpty, Worker: fx.dwIdl}
		}),
		"cancel_distribution_bucket_invitation": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgCancelDistributionBucketInvitation{Bucket: fx.dInv, Worker: fx.dwInv}
		}),
		"remove_distribution_bucket_operator": dLead(func(fx *roleFixture) chain.Msg {
			return chain.MsgRemoveDistributionBucketOperator{Bucket: fx.dAct, Worker: fx.dwAct}
		}),

		"accept_distribution_bucket_invitation": {func(fx *roleFixture) chain.Msg {
			return chain.MsgAcceptDistributionBucketInvitation{Worker: fx.dwInv, Bucket: fx.dInv}
		}, func(fx *roleFixture) chain.Key { return fx.dInvKey }, func(fx *roleFixture) []chain.Key {
			return []chain.Key{mallory, distLead, fx.dActKey}
		}},
		"set_distribution_operator_metadata": {func(fx *roleFixture) chain.Msg {
			return chain.MsgSetDistributionOperatorMetadata{Worker: fx.dwAct, Bucket: fx.dAct, Metadata: chain.DistributionOperatorMetadata{Endpoint: "https://cdn.example/"}}
		}, func(fx *roleFixture) chain.Key { return fx.dActKey }, func(fx *roleFixture) []chain.Key {
			return []chain.Key{mallory, distLead, fx.dInvKey}
		}},

		"register_data_objects": {func(fx *roleFixture) chain.Msg {
			return chain.MsgRegisterDataObjects{Bag: fx.bag, Objects: []chain.ObjectSpec{{Size: 5, ContentID: testCID("new")}}}
		}, key(alice), func(fx *roleFixture) []chain.Key { return []chain.Key{mallory, storageLead, fx.actKey} }},
		"delete_data_objects": {func(fx *roleFixture) chain.Msg {
			return chain.MsgDeleteDataObjects{Bag: fx.bag, Objects: []chain.ObjectID{fx.obj}}
		}, key(alice), func(fx *roleFixture) []chain.Key { return []chain.Key{mallory, distLead, fx.actKey} }},
	}
}

// roleGenesis changes the fixture's genesis for the messages that need it.
var roleGenesis = map[string][]func(*chain.Genesis){
	"upgrade_app_version": {atVersion(VersionMerkle)},
	"invite_member":       {func(g *chain.Genesis) { g.Limits.InitialInvites = 1 }},
}

// TestUnauthorizedEveryRoleGatedMsg submits every role-gated message type
// signed by keys without the role (no role at all, the other lead, another
// worker, a member) and checks it is refused with ErrUnauthorized, emits
// nothing and changes no state but the signer's nonce (harness.fail). Then
// the right signer's identical message succeeds, so the refusal was the
// role's. A message type added to chain.AllMsgs without a case here fails
// the test.
func TestUnauthorizedEveryRoleGatedMsg(t *testing.T) {
	cases := roleCases()
	covered := map[string]bool{chain.MsgCreateMember{}.Type(): true}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fx := newRoleFixture(t, roleGenesis[name]...)
			m := c.msg(fx)
			for _, k := range c.wrong(fx) {
				fx.h.fail(k, m, chain.ErrUnauthorized)
			}
			fx.h.do(c.right(fx), m)
		})
		covered[c.msg(&roleFixture{}).Type()] = true
	}
	for _, m := range chain.AllMsgs() {
		if !covered[m.Type()] {
			t.Errorf("message %s has no unauthorised-signer case", m.Type())
		}
	}
}
