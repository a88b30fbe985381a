// Package contracts implements Satchel's storage contracts: the signed
// proposal a renter publishes on the gossipsub topic of its requirements,
// the contract a renter (a member account) and a provider (the operator of
// a storage bucket) both sign, and their negotiation over
// /satchel/contract/1.0.0 — OFFER, CONSIGN, RETRIEVE, MIRROR and RENEW.
//
// The chain stays the authority. A proposal is accepted by the gossipsub
// validator only when it is signed by the controller account of the member
// it names; a provider offers only for bags the chain assigned to its
// bucket, and only to the bag's owner (the one account whose upload can be
// bound), and checks both again at CONSIGN, MIRROR and RENEW; a renter
// consigns only with offers whose bucket, worker, role account and
// published peer ID the chain confirms.
//
// A provider runs a Responder:
//
//	g := contracts.NewGossip(host, chainClient, log)
//	r, err := contracts.NewResponder(host, g, contracts.Identity{Key: roleKey, Worker: w, Bucket: b},
//		contracts.NewChainAuthority(chainClient, b), contracts.NewLedger(chainClient, b, freeDisk), store,
//		contracts.WithTopics(topics.New(topics.Low, topics.Medium, topics.High, topics.High)))
//
// A client runs a Renter and negotiates before it pushes chunks:
//
//	rn := contracts.NewRenter(host, g, memberKey, memberID, chainClient, store, log)
//	n, err := rn.Negotiate(ctx, contracts.Request{Terms: terms, Duration: 60 * 24 * time.Hour})
//	for _, c := range n.Contracts { /* push to c.Contract.ProviderPeer under c.Grant.Session */ }
//
// A host may run a Renter beside a Responder (or several Renters), sharing
// one Gossip or each with its own: the host's contract parts share the one
// validator pubsub allows per topic and the one handler of the protocol.
// Close the Renter, the Responder, then a Gossip made for them alone.
//
// Signatures cover explicit canonical byte layouts (Proposal.SigningBytes,
// Contract.SigningBytes, RetrieveSigningBytes), not the protobuf encoding,
// so any implementation can reproduce them; docs/PROTOCOL.md ("Storage
// contracts") gives the layouts. Contracts are kept in a Store (goleveldb)
// and verified again whenever they are read back.
package contracts
