package chain_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

func TestTouchedBy(t *testing.T) {
	bag, other := chain.ChannelBag(1), chain.ChannelBag(2)
	evs := []chain.Event{
		chain.NewEvent(chain.ObjectsRegistered{Bag: bag, Objects: []chain.DataObject{{ID: 3}, {ID: 1}}}),
		chain.NewEvent(chain.ObjectsAccepted{Bag: bag, Bucket: 4, Objects: []chain.ObjectID{1}}),
		chain.NewEvent(chain.ObjectsDeleted{Bag: other, Objects: []chain.ObjectID{9}, Reason: chain.DeletedExpired}),
		chain.NewEvent(chain.BagDeleted{Bag: other, StorageBuckets: []chain.StorageBucketID{5}}),
		chain.NewEvent(chain.StorageBagBucketsUpdated{Bag: bag, Added: []chain.StorageBucketID{6}, Removed: []chain.StorageBucketID{5}}),
		chain.NewEvent(chain.StorageOperatorMetadataSet{Bucket: 7}),
		chain.NewEvent(chain.DistributionBucketModeUpdated{Bucket: chain.DistributionBucketID{Family: 1, Index: 2}}),
		chain.NewEvent(chain.MemberCreated{Member: 1}),
		{Type: "ObjectsDeleted", Data: []byte(`not json`)},
	}
	got := chain.TouchedBy(evs)
	if !slices.Equal(got.Objects[bag], []chain.ObjectID{1, 3}) || !slices.Equal(got.Objects[other], []chain.ObjectID{9}) || len(got.Objects) != 2 {
		t.Errorf("objects %v", got.Objects)
	}
	if !slices.Equal(got.Bags, []chain.BagID{other, bag}) {
		t.Errorf("bags %v", got.Bags)
	}
	if !slices.Equal(got.StorageBuckets, []chain.StorageBucketID{5, 6, 7}) {
		t.Errorf("storage buckets %v", got.StorageBuckets)
	}
	if !slices.Equal(got.DistributionBuckets, []chain.DistributionBucketID{{Family: 1, Index: 2}}) {
		t.Errorf("distribution buckets %v", got.DistributionBuckets)
	}
	if !chain.TouchedBy([]chain.Event{chain.NewEvent(chain.MemberCreated{Member: 1})}).Empty() {
		t.Error("a member's creation touches objects or buckets")
	}
}

// A follower re-reads what a block touched: the objects the chain holds
// and the ones it no longer does.
func TestObjectsByID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, lead, _ := testSetup(t)
	member, _ := chain.GenerateKey()
	res, err := c.Submit(ctx, member, chain.MsgCreateMember{Handle: "m"})
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	if _, err := c.Submit(ctx, lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Submit(ctx, member, chain.MsgCreateChannel{Member: mc.Member})
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	cid := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" // sha256 of "hello world"
	res, err = c.Submit(ctx, member, chain.MsgRegisterDataObjects{Bag: cc.Bag, Objects: []chain.ObjectSpec{{Size: 11, ContentID: cid}}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	id := reg.Objects[0].ID
	found, missing, err := c.ObjectsByID(ctx, cc.Bag, []chain.ObjectID{id + 1, id, id + 1})
	if err != nil || len(found) != 1 || found[id].ContentID != cid || !slices.Equal(missing, []chain.ObjectID{id + 1}) {
		t.Fatalf("ObjectsByID = %v, %v, %v; want object %d found, %d missing", found, missing, err, id, id+1)
	}
}
