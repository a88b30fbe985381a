package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// allPages reads every page of a paged query from m, checking each one's
// proof as it goes.
func allPages[T any](t *testing.T, m *Machine, path string, req func(chain.PageRequest) any, limit int) ([]T, int) {
	t.Helper()
	var out []T
	p := chain.PageRequest{Limit: limit}
	_, hash, _ := m.Info()
	for pages := 1; ; pages++ {
		pg := queryAs[chain.Page[T]](t, m, path, req(p))
		if len(pg.Items) > limit {
			t.Fatalf("page of %d items; limit %d", len(pg.Items), limit)
		}
		b, err := VerifyWitness(proven(t, m, path, req(p)), hash)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if want, _ := json.Marshal(pg); !bytes.Equal(b, want) {
			t.Fatalf("proven page %s\nwant %s", b, want)
		}
		out = append(out, pg.Items...)
		if pg.Next == "" {
			return out, pages
		}
		p.Cursor = pg.Next
	}
}

func TestPagedObjects(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(1000, 1<<20)
	h.registerObjects(alice, bag, 250)
	all := queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bag)
	got, pages := allPages[chain.DataObject](t, h.m, chain.QueryObjectsPage,
		func(p chain.PageRequest) any { return chain.BagObjectsRequest{Bag: bag, PageRequest: p} }, 100)
	if pages != 3 || len(got) != 250 {
		t.Fatalf("%d objects in %d pages; want 250 in 3", len(got), pages)
	}
	for i := range all {
		if got[i] != all[i] {
			t.Fatalf("object %d: paged %+v, whole %+v", i, got[i], all[i])
		}
	}
	// A page of exactly the rest ends the list.
	got, pages = allPages[chain.DataObject](t, h.m, chain.QueryObjectsPage,
		func(p chain.PageRequest) any { return chain.BagObjectsRequest{Bag: bag, PageRequest: p} }, 125)
	if pages != 2 || len(got) != 250 {
		t.Fatalf("%d objects in %d pages of 125; want 250 in 2", len(got), pages)
	}

	bad := []struct {
		req  chain.BagObjectsRequest
		want *chain.Error
	}{
		{chain.BagObjectsRequest{Bag: chain.ChannelBag(99)}, chain.ErrBagNotFound},
		{chain.BagObjectsRequest{Bag: bag, PageRequest: chain.PageRequest{Cursor: "zz"}}, chain.ErrInvalid},
		{chain.BagObjectsRequest{Bag: bag, PageRequest: chain.PageRequest{Limit: chain.MaxPageLimit + 1}}, chain.ErrInvalid},
		{chain.BagObjectsRequest{Bag: bag, PageRequest: chain.PageRequest{Limit: -1}}, chain.ErrInvalid},
	}
	for _, c := range bad {
		if _, err := queryErr[chain.Page[chain.DataObject]](h.m, chain.QueryObjectsPage, c.req); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v; want %v", c.req, err, c.want)
		}
	}
}

func TestIndexes(t *testing.T) {
	h := newHarness(t)
	transactor := testKey("transactor")
	w := h.addWorker(chain.StorageGroup, bob)
	b := h.storageBucket(true, 100, 1000)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b, Worker: w})
	// An invited worker's bucket is indexed already.
	wb := queryAs[chain.Page[chain.BucketRef]](t, h.m, chain.QueryWorkerBuckets, chain.WorkerBucketsRequest{Group: chain.StorageGroup, Worker: w})
	if len(wb.Items) != 1 || wb.Items[0].Storage == nil || *wb.Items[0].Storage != b {
		t.Fatalf("worker buckets = %+v; want [%d]", wb, b)
	}
	h.do(bob, chain.MsgAcceptStorageBucketInvitation{Worker: w, Bucket: b, Transactor: transactor.Account()})
	bag := chain.ChannelBag(h.channel(alice, h.member(alice)))
	h.registerObjects(alice, bag, 6)
	dup := numberedCID(t, 2)
	h.do(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: dup}}})

	pending := func(bag chain.BagID) []chain.ObjectID {
		pg := queryAs[chain.Page[chain.DataObject]](t, h.m, chain.QueryPendingObjects, chain.PendingObjectsRequest{Bag: bag})
		var ids []chain.ObjectID
		for _, o := range pg.Items {
			if o.Accepted {
				t.Fatalf("accepted object %d listed as pending", o.ID)
			}
			ids = append(ids, o.ID)
		}
		return ids
	}
	ids := pending(bag)
	if len(ids) != 7 {
		t.Fatalf("pending = %v; want 7 objects", ids)
	}
	h.do(transactor, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: b, Bag: bag, Objects: []chain.ObjectID{ids[0], ids[2], ids[4]}})
	if got := pending(bag); len(got) != 4 || got[0] != ids[1] || got[1] != ids[3] {
		t.Fatalf("pending after accepting %d, %d, %d = %v", ids[0], ids[2], ids[4], got)
	}
	if got := pending(""); len(got) != 4 {
		t.Fatalf("pending in every bag = %v", got)
	}

	byCID := func(cid string) []chain.ObjectID {
		pg := queryAs[chain.Page[chain.DataObject]](t, h.m, chain.QueryObjectsByContentID, chain.ContentObjectsRequest{ContentID: cid})
		var ids []chain.ObjectID
		for _, o := range pg.Items {
			if o.ContentID != cid {
				t.Fatalf("object %+v listed under content ID %s", o, cid)
			}
			ids = append(ids, o.ID)
		}
		return ids
	}
	if got := byCID(dup); len(got) != 2 {
		t.Fatalf("objects with %s = %v; want 2", dup, got)
	}
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{ids[2], ids[3]}})
	if got := byCID(dup); len(got) != 1 || got[0] != ids[6] {
		t.Fatalf("objects with %s after deleting %d = %v; want [%d]", dup, ids[2], got, ids[6])
	}
	if got := pending(bag); len(got) != 3 {
		t.Fatalf("pending after deleting 3 = %v; want 3 objects", got)
	}

	bags := queryAs[chain.Page[chain.BagID]](t, h.m, chain.QueryStorageBucketBags, chain.StorageBucketBagsRequest{Bucket: b})
	if len(bags.Items) != 1 || bags.Items[0] != bag {
		t.Fatalf("bucket bags = %+v; want [%s]", bags, bag)
	}
	// Indexes are state: the state dump of a replay matches (see
	// TestDeterminism), and every index entry is proven like any read.
	_, hash, _ := h.m.Info()
	if _, err := VerifyWitness(proven(t, h.m, chain.QueryPendingObjects, chain.PendingObjectsRequest{}), hash); err != nil {
		t.Fatal(err)
	}
}
