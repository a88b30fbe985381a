// Package p2p is the libp2p host every Satchel node runs: a persistent ed25519
// identity, TCP and QUIC transports secured by Noise or TLS and multiplexed by
// yamux, gossipsub with strict message signing for the storage-contract topics,
// a Kademlia DHT under the /satchel prefix (protocol /satchel/kad/1.0.0) for
// finding who provides a bag or chunk, and helpers for Satchel's stream
// protocols, which exchange length-prefixed protobuf frames whose size is
// checked before anything is allocated.
//
// A node loads its identity and starts a host:
//
//	key, err := p2p.LoadOrCreateIdentity(filepath.Join(dataDir, "identity.key"))
//	...
//	h, err := p2p.New(ctx,
//		p2p.WithIdentity(key),
//		p2p.WithListenAddrs("/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"),
//		p2p.WithBootstrapAddrs(cfg.Bootstrap...),
//		p2p.WithLogger(log),
//		p2p.WithMetrics(registry),
//	)
//	...
//	defer h.Close()
//
// then serves and calls stream protocols through h.Protocol(), publishes and
// subscribes with h.Publish and h.Subscribe, and announces and finds content
// with h.Provide and h.FindProviders. The hosts listen on loopback unless told
// otherwise, and the DHT accepts loopback and private addresses, so a whole
// network runs on one machine; package p2p/testnet starts such networks for
// tests.
//
// What another peer can leave in a host is bounded: gossipsub tracks
// subscriptions to Satchel's topics only (topics.Names), the DHT keeps a
// bounded set of provider records and no values, and a host listens on
// every address it is given, each port its own, or does not start.
package p2p
