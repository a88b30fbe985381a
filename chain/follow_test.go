package chain_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

func TestTouchedBy(t *testing.T) {
	bag, other, gone := chain.ChannelBag(1), chain.ChannelBag(2), chain.ChannelBag(3)
	evs := []chain.Event{
		chain.NewEvent(chain.ObjectsRegistered{Bag: bag, Objects: []chain.DataObject{{ID: 3}, {ID: 1}}}),
		chain.NewEvent(chain.ObjectsAccepted{Bag: bag, Bucket: 4, Objects: []chain.ObjectID{1}}),
		chain.NewEvent(chain.ObjectsDeleted{Bag: other, Objects: []chain.ObjectID{9}, Reason: chain.DeletedExpired}),
		chain.NewEvent(chain.ObjectsDeleted{Bag: "no bag", Objects: []chain.ObjectID{5}}),
		chain.NewEvent(chain.BagDeleted{Bag: gone, StorageBuckets: []chain.StorageBucketID{5}}),
		chain.NewEvent(chain.BagDeleted{Bag: "no bag", StorageBuckets: []chain.StorageBucketID{8}}),
		chain.NewEvent(chain.StorageBagBucketsUpdated{Bag: bag, Added: []chain.StorageBucketID{6}, Removed: []chain.StorageBucketID{5}}),
		chain.NewEvent(chain.StorageOperatorMetadataSet{Bucket: 7}),
		chain.NewEvent(chain.StorageBucketVoucherLimitsSet{Bucket: 6}),
		chain.NewEvent(chain.DistributionBucketModeUpdated{Bucket: chain.DistributionBucketID{Family: 1, Index: 2}}),
		chain.NewEvent(chain.MemberCreated{Member: 1}),
		{Type: "ObjectsDeleted", Data: []byte(`not json`)},
	}
	got := chain.TouchedBy(evs)
	if !slices.Equal(got.Objects[bag], []chain.ObjectID{1, 3}) || !slices.Equal(got.Objects[other], []chain.ObjectID{9}) || len(got.Objects) != 2 {
		t.Errorf("objects %v", got.Objects)
	}
	if len(got.Registered) != 2 || !got.Registered[1] || !got.Registered[3] || len(got.Accepted) != 1 || !got.Accepted[1] ||
		len(got.Deleted) != 1 || !got.Deleted[9] {
		t.Errorf("registered %v, accepted %v, deleted %v", got.Registered, got.Accepted, got.Deleted)
	}
	if !slices.Equal(got.Bags, []chain.BagID{gone, bag}) || !slices.Equal(got.DeletedBags, []chain.BagID{gone}) {
		t.Errorf("bags %v, deleted %v", got.Bags, got.DeletedBags)
	}
	if !slices.Equal(got.StorageBuckets, []chain.StorageBucketID{5, 6, 7}) || !slices.Equal(got.StorageOperators, []chain.StorageBucketID{7}) {
		t.Errorf("storage buckets %v, operators changed %v", got.StorageBuckets, got.StorageOperators)
	}
	if !slices.Equal(got.DistributionBuckets, []chain.DistributionBucketID{{Family: 1, Index: 2}}) {
		t.Errorf("distribution buckets %v", got.DistributionBuckets)
	}
	if !chain.TouchedBy([]chain.Event{chain.NewEvent(chain.MemberCreated{Member: 1})}).Empty() {
		t.Error("a member's creation touches objects or buckets")
	}
}

// countingReader counts the reads ObjectsByID makes of each kind.
type countingReader struct {
	chain.ObjectsReader
	objects, pages atomic.Int32
}

func (r *countingReader) DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	r.objects.Add(1)
	return r.ObjectsReader.DataObject(ctx, bag, id)
}

func (r *countingReader) ObjectsPage(ctx context.Context, bag chain.BagID, p chain.PageRequest) (chain.Page[chain.DataObject], error) {
	r.pages.Add(1)
	return r.ObjectsReader.ObjectsPage(ctx, bag, p)
}

// A follower re-reads what a block touched: the objects the chain holds
// and the ones it no longer does, by ID or by the bag's pages (sooner
// when objects were said deleted) with the same answer.
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
	spec := chain.ObjectSpec{Size: 11, ContentID: cid}
	res, err = c.Submit(ctx, member, chain.MsgRegisterDataObjects{Bag: cc.Bag, Objects: []chain.ObjectSpec{spec, spec, spec}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	a, b, d := reg.Objects[0].ID, reg.Objects[1].ID, reg.Objects[2].ID
	if _, err := c.Submit(ctx, member, chain.MsgDeleteDataObjects{Bag: cc.Bag, Objects: []chain.ObjectID{b}}); err != nil {
		t.Fatal(err)
	}
	ids := []chain.ObjectID{d + 1, d, b, a, d + 1}
	for _, tc := range []struct {
		name           string
		how            chain.ByID
		objects, pages int32
	}{
		{"by ID", chain.ByID{Width: 4}, 4, 0},
		{"by pages", chain.ByID{Width: 2, Deleted: 1, ReadTimeout: 5 * time.Second}, 0, 1},
	} {
		r := &countingReader{ObjectsReader: c}
		found, missing, err := chain.ObjectsByID(ctx, r, cc.Bag, ids, tc.how)
		if err != nil || len(found) != 2 || found[0].ID != a || found[1].ID != d || found[1].ContentID != cid ||
			!slices.Equal(missing, []chain.ObjectID{b, d + 1}) {
			t.Fatalf("%s: ObjectsByID = %v, %v, %v; want objects %d and %d found, %d and %d missing", tc.name, found, missing, err, a, d, b, d+1)
		}
		if r.objects.Load() != tc.objects || r.pages.Load() != tc.pages {
			t.Errorf("%s: read %d objects and %d pages, want %d and %d", tc.name, r.objects.Load(), r.pages.Load(), tc.objects, tc.pages)
		}
	}
	found, missing, err := chain.ObjectsByID(ctx, c, chain.ChannelBag(cc.Channel+100), []chain.ObjectID{a}, chain.ByID{})
	if err != nil || len(found) != 0 || !slices.Equal(missing, []chain.ObjectID{a}) {
		t.Fatalf("ObjectsByID of a bag the chain does not hold = %v, %v, %v; want object %d missing", found, missing, err, a)
	}
}
