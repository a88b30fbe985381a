package chain

import (
	"context"
	"fmt"
)

// Paged queries. Every list has a paged query over an index in the state
// tree (so a page is proven like any read): a bag's objects, all bags, a
// bucket's bags, objects pending acceptance (all, or of one bag), the
// objects with a content ID, a worker's buckets. A page holds up to Limit
// items (DefaultPageLimit when 0, at most MaxPageLimit) and Next, the
// cursor of the following page ("" after the last page). Cursors are
// opaque; pages follow the key order (objects by ID, bags by ID).
const (
	// QueryObjectsPage: BagObjectsRequest → Page[DataObject].
	QueryObjectsPage = "/page/objects"
	// QueryBagsPage: PageRequest → Page[Bag].
	QueryBagsPage = "/page/bags"
	// QueryStorageBucketBags: StorageBucketBagsRequest → Page[BagID].
	QueryStorageBucketBags = "/page/storage/bucket/bags"
	// QueryDistributionBucketBags: DistributionBucketBagsRequest →
	// Page[BagID].
	QueryDistributionBucketBags = "/page/distribution/bucket/bags"
	// QueryPendingObjects: PendingObjectsRequest → Page[DataObject], the
	// objects not accepted yet, by bag then ID.
	QueryPendingObjects = "/page/objects/pending"
	// QueryObjectsByContentID: ContentObjectsRequest → Page[DataObject],
	// by bag then ID.
	QueryObjectsByContentID = "/page/objects/by-content-id"
	// QueryWorkerBuckets: WorkerBucketsRequest → Page[BucketRef], the
	// buckets a worker operates or is invited to.
	QueryWorkerBuckets = "/page/worker/buckets"
)

// Page limits.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// PageRequest asks for one page: after Cursor (the Next of the previous
// page; "" for the first), at most Limit items.
type PageRequest struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// Page is one page of a list and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// BagObjectsRequest pages a bag's objects.
type BagObjectsRequest struct {
	Bag BagID `json:"bag"`
	PageRequest
}

// StorageBucketBagsRequest pages a storage bucket's bags.
type StorageBucketBagsRequest struct {
	Bucket StorageBucketID `json:"bucket"`
	PageRequest
}

// DistributionBucketBagsRequest pages a distribution bucket's bags.
type DistributionBucketBagsRequest struct {
	Bucket DistributionBucketID `json:"bucket"`
	PageRequest
}

// PendingObjectsRequest pages the objects pending acceptance, of one bag
// or (Bag "") of every bag.
type PendingObjectsRequest struct {
	Bag BagID `json:"bag,omitempty"`
	PageRequest
}

// ContentObjectsRequest pages the objects with a content ID.
type ContentObjectsRequest struct {
	ContentID string `json:"contentId"`
	PageRequest
}

// WorkerBucketsRequest pages the buckets of a worker of a group.
type WorkerBucketsRequest struct {
	Group  Group    `json:"group"`
	Worker WorkerID `json:"worker"`
	PageRequest
}

// BucketRef names a storage bucket or a distribution bucket.
type BucketRef struct {
	Storage      *StorageBucketID      `json:"storage,omitempty"`
	Distribution *DistributionBucketID `json:"distribution,omitempty"`
}

// ObjectsPage returns one page of a bag's objects, by ID.
func (c *Client) ObjectsPage(ctx context.Context, bag BagID, p PageRequest) (Page[DataObject], error) {
	return query[Page[DataObject]](ctx, c, QueryObjectsPage, BagObjectsRequest{Bag: bag, PageRequest: p})
}

// BagsPage returns one page of all bags, by ID.
func (c *Client) BagsPage(ctx context.Context, p PageRequest) (Page[Bag], error) {
	return query[Page[Bag]](ctx, c, QueryBagsPage, p)
}

// StorageBucketBags returns one page of a storage bucket's bags.
func (c *Client) StorageBucketBags(ctx context.Context, id StorageBucketID, p PageRequest) (Page[BagID], error) {
	return query[Page[BagID]](ctx, c, QueryStorageBucketBags, StorageBucketBagsRequest{Bucket: id, PageRequest: p})
}

// DistributionBucketBags returns one page of a distribution bucket's bags.
func (c *Client) DistributionBucketBags(ctx context.Context, id DistributionBucketID, p PageRequest) (Page[BagID], error) {
	return query[Page[BagID]](ctx, c, QueryDistributionBucketBags, DistributionBucketBagsRequest{Bucket: id, PageRequest: p})
}

// PendingObjects returns one page of the objects pending acceptance in bag
// (every bag when bag is "").
func (c *Client) PendingObjects(ctx context.Context, bag BagID, p PageRequest) (Page[DataObject], error) {
	return query[Page[DataObject]](ctx, c, QueryPendingObjects, PendingObjectsRequest{Bag: bag, PageRequest: p})
}

// ObjectsByContentID returns one page of the objects with content ID cid.
func (c *Client) ObjectsByContentID(ctx context.Context, cid string, p PageRequest) (Page[DataObject], error) {
	return query[Page[DataObject]](ctx, c, QueryObjectsByContentID, ContentObjectsRequest{ContentID: cid, PageRequest: p})
}

// WorkerBuckets returns one page of the buckets worker w of group g
// operates or is invited to.
func (c *Client) WorkerBuckets(ctx context.Context, g Group, w WorkerID, p PageRequest) (Page[BucketRef], error) {
	return query[Page[BucketRef]](ctx, c, QueryWorkerBuckets, WorkerBucketsRequest{Group: g, Worker: w, PageRequest: p})
}

// maxPages bounds how many pages a whole-list method reads (100 million
// items at MaxPageLimit): a node that keeps handing out cursors cannot keep
// a client reading forever.
const maxPages = 100_000

// All reads every page of a paged query, MaxPageLimit items at a time.
// Pages are read one after another, each at the node's state then: a list
// that changes while it is read may show an item twice or not at all.
func All[T any](ctx context.Context, page func(context.Context, PageRequest) (Page[T], error)) ([]T, error) {
	out := []T{}
	p := PageRequest{Limit: MaxPageLimit}
	for i := 0; i < maxPages; i++ {
		pg, err := page(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, pg.Items...)
		if pg.Next == "" {
			return out, nil
		}
		if pg.Next == p.Cursor {
			return nil, fmt.Errorf("paged query: the node repeats cursor %q", pg.Next)
		}
		p.Cursor = pg.Next
	}
	return nil, fmt.Errorf("paged query: more than %d pages", maxPages)
}
