// Package distributor is the distributor node: it operates distribution
// buckets and serves the data objects of their bags to end users over HTTP,
// like a CDN, from a byte-bounded disk cache that it fills from the bags'
// storage providers.
//
// The HTTP API (docs/DISTRIBUTOR.md) follows Argus, the reference
// distributor: GET/HEAD /api/v1/assets/{objectId}, GET /api/v1/status,
// GET /api/v1/buckets, plus single and multiple Range requests, ETag and
// If-None-Match, and verifiable responses (raw blocks and a CAR of an
// object's blocks).
//
// A miss starts answering as soon as the first chunk it needs arrives: the
// node walks the object's UnixFS DAG to the leaves a request covers and
// fetches only those, from the bag's providers ranked by measured latency and
// throughput, falling back to the next one when a provider fails. Every block
// is verified against its CID before it is served or cached. Concurrent
// requests for one block share one fetch. At most WithMaxMisses answers
// fetch at once; one that waits on its client or on busy providers gives
// its slot back meanwhile, and a client reading an answer that needs the
// providers slower than WithMinSendRate is cut off.
//
// The node follows the chain: an object deleted, or a bag removed from the
// node's buckets, is evicted from the cache and no longer served once the
// block after the one announcing it is committed. Block events are only
// hints: what they name is read again through the ChainReader (proven over
// a remote endpoint) before anything changes. Its memory does not grow with the
// objects it serves: it keeps object IDs as runs of consecutive IDs per bag
// and a bounded cache of object records, reading others from the chain when
// requested.
//
// The node imports no other node: it reads blocks through a BlockSource
// (the fetch protocol's caller) and the chain through a ChainReader.
//
//	srv, err := distributor.New(host, fetchClient, chainClient,
//		distributor.Identity{Worker: 4, Buckets: []chain.DistributionBucketID{{Family: 0, Index: 0}}},
//		distributor.WithCacheDir(dir), distributor.WithHTTPAddr("127.0.0.1:3334"))
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	fmt.Println(srv.URL() + "/api/v1/assets/7")
package distributor
