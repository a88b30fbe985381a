package chain

// Query paths answered by Machine.Query at the last committed state. The
// request data is the JSON of the argument named beside each path (none:
// empty data); the response is the JSON of the result. A missing thing is
// an error matching ErrNotFound (and its specific sentinel).
const (
	// QueryInfo: no data → NodeInfo (chain ID, committed height, app hash).
	QueryInfo = "/info"
	// QueryParams: no data → Params.
	QueryParams = "/params"
	// QueryAccount: Account → AccountInfo (nonce 0 for an unknown account).
	QueryAccount = "/account"
	// QueryBag: BagID → Bag.
	QueryBag = "/bag"
	// QueryBags: no data → []Bag, ordered by ID.
	QueryBags = "/bags"
	// QueryStorageBucket: StorageBucketID → StorageBucket (with Bags).
	QueryStorageBucket = "/storage/bucket"
	// QueryStorageBuckets: no data → []StorageBucket (with Bags), by ID.
	QueryStorageBuckets = "/storage/buckets"
	// QueryDistributionFamily: FamilyID → DistributionFamily (with Buckets).
	QueryDistributionFamily = "/distribution/family"
	// QueryDistributionFamilies: no data → []DistributionFamily (with
	// Buckets), by ID.
	QueryDistributionFamilies = "/distribution/families"
	// QueryDistributionBucket: DistributionBucketID → DistributionBucket
	// (with Bags).
	QueryDistributionBucket = "/distribution/bucket"
	// QueryObject: ObjectRef → DataObject.
	QueryObject = "/object"
	// QueryObjectByID: ObjectID → DataObject, whichever bag holds it
	// (object IDs are unique across bags), found through the object-ID
	// index. ErrObjectNotFound means no object has the ID. A chain started
	// before the index (app version 2) has no entries for the objects
	// registered then: for an ID the index lacks it answers plain
	// ErrNotFound, and only a scan of every bag (QueryObject per bag)
	// finds such an object.
	QueryObjectByID = "/object/by-id"
	// QueryObjects: BagID → []DataObject, by ID.
	QueryObjects = "/objects"
	// QueryMember: MemberID → Member.
	QueryMember = "/member"
	// QueryChannel: ChannelID → Channel.
	QueryChannel = "/channel"
	// QueryWorkers: Group → []Worker, by ID.
	QueryWorkers = "/workers"
	// QueryWorker: WorkerRef → Worker.
	QueryWorker = "/worker"
	// QueryProven: ProvenQuery → the JSON of a state.Witness: every read
	// the query made at the committed height, with proofs against that
	// height's app hash. A verifier checks them against a header the
	// validators signed and answers the query from the proven reads alone
	// (package chain/verify).
	QueryProven = "/proven"
)

// ProvenQuery asks for a query's answer with proofs (the QueryProven
// argument): Path and Data are those of the plain query. The node answers
// at the height before its last committed one (whose app hash is in the
// last signed header), or at its last when MinHeight asks for it (the
// header then follows with the next block).
type ProvenQuery struct {
	Path      string `json:"path"`
	Data      []byte `json:"data,omitempty"`
	MinHeight int64  `json:"minHeight,omitempty"`
}

// ObjectRef names a data object in a bag (the QueryObject argument).
type ObjectRef struct {
	Bag BagID    `json:"bag"`
	ID  ObjectID `json:"id"`
}

// WorkerRef names a worker of a group (the QueryWorker argument).
type WorkerRef struct {
	Group Group    `json:"group"`
	ID    WorkerID `json:"id"`
}
