// Package provider is the Satchel storage provider: the node that operates a
// storage bucket (`satchel storage server`). Server follows the chain,
// serves the store and fetch protocols for the bags assigned to its bucket,
// accepts bound uploads on chain, syncs missing objects from peers, repairs
// corrupt blocks, drops what the chain removed, announces its bags on the
// DHT and reports its state over HTTP. Blocks live in the subpackage
// blockstore.
//
// The wire protocols are packages of their own, which the client library
// and other nodes import without importing this node: protocol/store and
// protocol/fetch. The node serves their handlers over its block store and
// its chain authorizer:
//
//	bs, _ := blockstore.Open(dir)
//	s, err := provider.New(host, bs, chainClient, provider.Identity{Worker: w, Bucket: b, Transactor: key})
//	err = s.Run(ctx)
package provider
