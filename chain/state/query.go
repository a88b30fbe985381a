package state

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/satchel-net/satchel/chain"
)

// query answers one read from committed state r.
func query(r reader, height int64, appHash []byte, path string, data []byte) (any, error) {
	return (&querier{x: &execCtx{s: store{newCache(r)}}, r: r, height: height, appHash: appHash}).query(path, data)
}

// recordReads runs a query over r for its reads only (a proven query's
// witness), skipping work that only shapes the answer.
func recordReads(r reader, height int64, appHash []byte, path string, data []byte) error {
	q := &querier{x: &execCtx{s: store{newCache(r)}}, r: r, height: height, appHash: appHash, readsOnly: true}
	_, err := q.query(path, data)
	return err
}

func (q *querier) query(path string, data []byte) (any, error) {
	r := q.r
	arg := func(v any) error {
		if len(bytes.TrimSpace(data)) == 0 {
			return chain.Errorf(chain.ErrInvalid, "query %s needs an argument", path)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return chain.Errorf(chain.ErrInvalid, "query %s: bad argument: %v", path, err)
		}
		return nil
	}
	switch path {
	case chain.QueryInfo:
		return q.info()
	case chain.QueryParams:
		return q.params()
	case chain.QueryAccount:
		var a chain.Account
		if err := arg(&a); err != nil {
			return nil, err
		}
		n, err := loadNonces(q.x.s, a)
		if err != nil {
			return nil, err
		}
		return chain.AccountInfo{Account: a, Nonce: n.max}, nil
	case chain.QueryBag:
		var id chain.BagID
		if err := arg(&id); err != nil {
			return nil, err
		}
		return q.x.bag(id)
	case chain.QueryBags:
		return scanAll[chain.Bag](r, keyBag)
	case chain.QueryStorageBucket:
		var id chain.StorageBucketID
		if err := arg(&id); err != nil {
			return nil, err
		}
		b, err := q.x.storageBucket(id)
		if err != nil {
			return nil, err
		}
		return q.withStorageBags(b)
	case chain.QueryStorageBuckets:
		bs, err := scanAll[chain.StorageBucket](r, keySBucket)
		if err != nil {
			return nil, err
		}
		for i := range bs {
			if bs[i], err = q.withStorageBags(bs[i]); err != nil {
				return nil, err
			}
		}
		return bs, nil
	case chain.QueryDistributionFamily:
		var id chain.FamilyID
		if err := arg(&id); err != nil {
			return nil, err
		}
		f, err := q.x.family(id)
		if err != nil {
			return nil, err
		}
		return q.familyView(f)
	case chain.QueryDistributionFamilies:
		fs, err := scanAll[familyRecord](r, keyFamily)
		if err != nil {
			return nil, err
		}
		out := make([]chain.DistributionFamily, 0, len(fs))
		for _, f := range fs {
			v, err := q.familyView(f)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case chain.QueryDistributionBucket:
		var id chain.DistributionBucketID
		if err := arg(&id); err != nil {
			return nil, err
		}
		b, err := q.x.distributionBucket(id)
		if err != nil {
			return nil, err
		}
		return q.withDistributionBags(b)
	case chain.QueryObject:
		var ref chain.ObjectRef
		if err := arg(&ref); err != nil {
			return nil, err
		}
		return q.x.object(ref.Bag, ref.ID)
	case chain.QueryObjectByID:
		var id chain.ObjectID
		if err := arg(&id); err != nil {
			return nil, err
		}
		return q.objectByID(id)
	case chain.QueryObjects:
		var id chain.BagID
		if err := arg(&id); err != nil {
			return nil, err
		}
		if _, err := q.x.bag(id); err != nil {
			return nil, err
		}
		return scanAll[chain.DataObject](r, objectPrefix(id))
	case chain.QueryMember:
		var id chain.MemberID
		if err := arg(&id); err != nil {
			return nil, err
		}
		return q.x.member(id)
	case chain.QueryChannel:
		var id chain.ChannelID
		if err := arg(&id); err != nil {
			return nil, err
		}
		var ch chain.Channel
		ok, err := q.x.s.getJSON(channelKey(id), &ch)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, chain.Errorf(chain.ErrChannelNotFound, "channel %d does not exist", id)
		}
		return ch, nil
	case chain.QueryWorkers:
		var g chain.Group
		if err := arg(&g); err != nil {
			return nil, err
		}
		if !g.Valid() {
			return nil, chain.Errorf(chain.ErrInvalid, "working group %q: want storage or distribution", g)
		}
		ws, err := scanAll[workerRecord](r, workerPrefix(g))
		if err != nil {
			return nil, err
		}
		out := make([]chain.Worker, len(ws))
		for i, w := range ws {
			out[i] = w.Worker
		}
		return out, nil
	case chain.QueryValidators:
		return scanAll[chain.Validator](r, keyValidator)
	case chain.QueryAppVersion:
		return q.appVersion()
	case chain.QueryWorker:
		var ref chain.WorkerRef
		if err := arg(&ref); err != nil {
			return nil, err
		}
		if !ref.Group.Valid() {
			return nil, chain.Errorf(chain.ErrInvalid, "working group %q: want storage or distribution", ref.Group)
		}
		w, err := q.x.worker(ref.Group, ref.ID)
		if err != nil {
			return nil, err
		}
		return w.Worker, nil
	}
	if v, ok, err := q.paged(path, arg); ok {
		return v, err
	}
	return nil, chain.Errorf(chain.ErrUnknownQuery, "unknown query path %q; the node may be older than the client", path)
}

type querier struct {
	x       *execCtx
	r       reader
	height  int64
	appHash []byte
	// readsOnly: the answer is not wanted, only the reads (see
	// recordReads); values that are the answer's items are not decoded.
	readsOnly bool
}

// objectByID finds an object through the object-ID index: a page of one
// entry (proven to be the first under the ID's prefix, or that there is
// none), then the object it names. When there is none, the answer is
// ErrObjectNotFound if the index holds every object of the state
// (keyObjectsIndexed), and plain ErrNotFound if the state is older than the
// index and the object may be one it lacks.
func (q *querier) objectByID(id chain.ObjectID) (chain.DataObject, error) {
	prefix := objectBagPrefix(id)
	es, _, err := q.r.scanPage(prefix, "", 1)
	if err != nil {
		return chain.DataObject{}, err
	}
	if len(es) > 0 {
		return q.x.object(chain.BagID(strings.TrimPrefix(es[0].key, prefix)), id)
	}
	_, complete, err := q.r.get(keyObjectsIndexed)
	if err != nil {
		return chain.DataObject{}, err
	}
	if complete {
		return chain.DataObject{}, chain.Errorf(chain.ErrObjectNotFound, "data object %d does not exist", id)
	}
	return chain.DataObject{}, chain.Errorf(chain.ErrNotFound,
		"data object %d is in no bag's index (this chain started before the index: objects registered then are not in it; name the bag)", id)
}

func (q *querier) appVersion() (chain.AppVersionInfo, error) {
	v, err := stateVersion(q.r)
	if err != nil {
		return chain.AppVersionInfo{}, err
	}
	p, err := upgradePlan(q.r)
	return chain.AppVersionInfo{Version: v, Upgrade: p}, err
}

func (q *querier) info() (chain.NodeInfo, error) {
	var info chain.NodeInfo
	var p paramsRecord
	if _, err := q.x.s.getJSON(keyParams, &p); err != nil {
		return info, err
	}
	info.ChainID, info.Height, info.AppHash = p.ChainID, q.height, q.appHash
	return info, nil
}

func (q *querier) params() (chain.Params, error) {
	p, err := q.x.loadParams()
	if err != nil {
		return chain.Params{}, err
	}
	out := chain.Params{
		ChainID:          p.ChainID,
		StorageLead:      p.StorageLead,
		DistributionLead: p.DistributionLead,
		Limits:           p.Limits,
		UploadingBlocked: p.UploadingBlocked,
		Policies:         p.Policies,
		Blacklist:        []string{},
	}
	for i := range out.Policies {
		if out.Policies[i].Families == nil {
			out.Policies[i].Families = map[chain.FamilyID]uint64{}
		}
	}
	bl, err := q.r.scan(keyBlacklist)
	if err != nil {
		return out, err
	}
	for _, e := range bl {
		out.Blacklist = append(out.Blacklist, strings.TrimPrefix(e.key, keyBlacklist))
	}
	return out, nil
}

func (q *querier) bagsUnder(prefix string) ([]chain.BagID, error) {
	es, err := q.r.scan(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]chain.BagID, 0, len(es))
	for _, e := range es {
		out = append(out, chain.BagID(strings.TrimPrefix(e.key, prefix)))
	}
	return out, nil
}

func (q *querier) withStorageBags(b chain.StorageBucket) (chain.StorageBucket, error) {
	var err error
	b.Bags, err = q.bagsUnder(sBucketBagPrefix(b.ID))
	return b, err
}

func (q *querier) withDistributionBags(b chain.DistributionBucket) (chain.DistributionBucket, error) {
	var err error
	b.Bags, err = q.bagsUnder(dBucketBagPrefix(b.ID))
	return b, err
}

func (q *querier) familyView(f familyRecord) (chain.DistributionFamily, error) {
	out := chain.DistributionFamily{ID: f.ID, Metadata: f.Metadata, NextIndex: f.NextIndex}
	bs, err := scanAll[chain.DistributionBucket](q.r, dBucketPrefix(f.ID))
	if err != nil {
		return out, err
	}
	for i := range bs {
		if bs[i], err = q.withDistributionBags(bs[i]); err != nil {
			return out, err
		}
	}
	out.Buckets = bs
	return out, nil
}

// scanAll decodes every value under prefix, in key order.
func scanAll[T any](r reader, prefix string) ([]T, error) {
	es, err := r.scan(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(es))
	for _, e := range es {
		var v T
		if err := json.Unmarshal(e.value, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
