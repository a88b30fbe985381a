package state

import (
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/satchel-net/satchel/chain"
)

// paged answers the paged queries (chain/pages.go); ok is false for other
// paths.
func (q *querier) paged(path string, arg func(any) error) (v any, ok bool, err error) {
	switch path {
	case chain.QueryObjectsPage:
		var req chain.BagObjectsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		if _, err := q.x.bag(req.Bag); err != nil {
			return nil, true, err
		}
		v, err = valuePage[chain.DataObject](q, objectPrefix(req.Bag), req.PageRequest)
	case chain.QueryBagsPage:
		var req chain.PageRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		v, err = valuePage[chain.Bag](q, keyBag, req)
	case chain.QueryStorageBucketBags:
		var req chain.StorageBucketBagsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		if _, err := q.x.storageBucket(req.Bucket); err != nil {
			return nil, true, err
		}
		v, err = pageOf[chain.BagID](q, sBucketBagPrefix(req.Bucket), req.PageRequest, bagIDAfter(sBucketBagPrefix(req.Bucket)))
	case chain.QueryDistributionBucketBags:
		var req chain.DistributionBucketBagsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		if _, err := q.x.distributionBucket(req.Bucket); err != nil {
			return nil, true, err
		}
		v, err = pageOf[chain.BagID](q, dBucketBagPrefix(req.Bucket), req.PageRequest, bagIDAfter(dBucketBagPrefix(req.Bucket)))
	case chain.QueryPendingObjects:
		var req chain.PendingObjectsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		prefix := keyPending
		if req.Bag != "" {
			prefix = pendingPrefix(req.Bag)
		}
		v, err = pageOf[chain.DataObject](q, prefix, req.PageRequest, q.objectAt(keyPending))
	case chain.QueryObjectsByContentID:
		var req chain.ContentObjectsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		if req.ContentID == "" || strings.ContainsRune(req.ContentID, 0) {
			return nil, true, chain.Errorf(chain.ErrInvalid, "objects by content ID: give a content ID")
		}
		prefix := byCIDPrefix(req.ContentID)
		v, err = pageOf[chain.DataObject](q, prefix, req.PageRequest, q.objectAt(prefix))
	case chain.QueryWorkerBuckets:
		var req chain.WorkerBucketsRequest
		if err := arg(&req); err != nil {
			return nil, true, err
		}
		v, err = q.workerBuckets(req)
	default:
		return nil, false, nil
	}
	return v, true, err
}

// pageOf reads one page under prefix and decodes each entry with dec.
func pageOf[T any](q *querier, prefix string, p chain.PageRequest, dec func(kv) (T, error)) (chain.Page[T], error) {
	out := chain.Page[T]{Items: []T{}}
	limit := p.Limit
	switch {
	case limit < 0 || limit > chain.MaxPageLimit:
		return out, chain.Errorf(chain.ErrInvalid, "page limit %d: want 1 to %d (0 for %d)", limit, chain.MaxPageLimit, chain.DefaultPageLimit)
	case limit == 0:
		limit = chain.DefaultPageLimit
	}
	after := ""
	if p.Cursor != "" {
		b, err := hex.DecodeString(p.Cursor)
		if err != nil || len(b) == 0 {
			return out, chain.Errorf(chain.ErrInvalid, "page cursor %q is not one this node gave; start again without a cursor", p.Cursor)
		}
		after = prefix + string(b)
	}
	es, more, err := q.r.scanPage(prefix, after, limit)
	if err != nil {
		return out, err
	}
	for _, e := range es {
		v, err := dec(e)
		if err != nil {
			return out, err
		}
		out.Items = append(out.Items, v)
	}
	if more && len(es) > 0 {
		out.Next = hex.EncodeToString([]byte(es[len(es)-1].key[len(prefix):]))
	}
	return out, nil
}

// valuePage is pageOf for entries whose values are the items (JSON). When
// only the reads are wanted, the values are not decoded.
func valuePage[T any](q *querier, prefix string, p chain.PageRequest) (chain.Page[T], error) {
	dec := decodeJSON[T]
	if q.readsOnly {
		dec = func(kv) (T, error) {
			var v T
			return v, nil
		}
	}
	return pageOf(q, prefix, p, dec)
}

func decodeJSON[T any](e kv) (T, error) {
	var v T
	if err := json.Unmarshal(e.value, &v); err != nil {
		return v, errInternal(err)
	}
	return v, nil
}

// bagIDAfter decodes an index entry whose key ends with a bag ID.
func bagIDAfter(prefix string) func(kv) (chain.BagID, error) {
	return func(e kv) (chain.BagID, error) { return chain.BagID(strings.TrimPrefix(e.key, prefix)), nil }
}

// objectAt decodes an index entry whose key ends with bag 0x00 id (after
// prefix) by reading the object.
func (q *querier) objectAt(prefix string) func(kv) (chain.DataObject, error) {
	return func(e kv) (chain.DataObject, error) {
		rest := strings.TrimPrefix(e.key, prefix)
		if len(rest) < 10 || rest[len(rest)-9] != 0 {
			return chain.DataObject{}, chain.Errorf(chain.ErrInternal, "index entry %q is malformed", e.key)
		}
		bag := chain.BagID(rest[:len(rest)-9])
		id := chain.ObjectID(beUint(rest[len(rest)-8:]))
		return q.x.object(bag, id)
	}
}

func (q *querier) workerBuckets(req chain.WorkerBucketsRequest) (chain.Page[chain.BucketRef], error) {
	switch req.Group {
	case chain.StorageGroup:
		prefix := workerSBPrefix(req.Worker)
		return pageOf(q, prefix, req.PageRequest, func(e kv) (chain.BucketRef, error) {
			rest := strings.TrimPrefix(e.key, prefix)
			if len(rest) != 8 {
				return chain.BucketRef{}, chain.Errorf(chain.ErrInternal, "index entry %q is malformed", e.key)
			}
			id := chain.StorageBucketID(beUint(rest))
			return chain.BucketRef{Storage: &id}, nil
		})
	case chain.DistributionGroup:
		prefix := workerDBPrefix(req.Worker)
		return pageOf(q, prefix, req.PageRequest, func(e kv) (chain.BucketRef, error) {
			rest := strings.TrimPrefix(e.key, prefix)
			if len(rest) != 16 {
				return chain.BucketRef{}, chain.Errorf(chain.ErrInternal, "index entry %q is malformed", e.key)
			}
			id := chain.DistributionBucketID{Family: chain.FamilyID(beUint(rest[:8])), Index: beUint(rest[8:])}
			return chain.BucketRef{Distribution: &id}, nil
		})
	}
	return chain.Page[chain.BucketRef]{}, chain.Errorf(chain.ErrInvalid, "working group %q: want storage or distribution", req.Group)
}

// beUint decodes a big-endian number of up to 8 bytes, as u64 keys hold.
func beUint(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		n = n<<8 | uint64(s[i])
	}
	return n
}
