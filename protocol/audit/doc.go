// Package audit is /satchel/audit/1.0.0: proof that a storage provider
// still holds what it stored. A challenger names an object (bag, object ID,
// content ID on chain) and random chunk indexes; the provider answers with
// each chunk's bytes and the UnixFS DAG's interior blocks on the path from
// the root to the chunk (the chunker's proofs), and the challenger checks
// them against the content ID with chunker.VerifyProof. No secret is
// needed, anyone can audit, and audits never run out.
//
// Challenges are signed with the challenger's libp2p key (an ed25519 peer
// ID carries its public key), name the provider, and carry a nonce and a
// time, so a provider can prove who asked, rate-limit challengers, and
// refuse replays. Range samples (a byte range of a chunk) cost less
// bandwidth but can only be checked by a challenger that holds the chunk
// itself, as a peer provider of the same bag does (WithLocalChunks).
//
// Auditors publish what they found as signed AuditResults on Topic ("0a",
// publication prefix 0x0a); a ResultFilter opens them for a topic
// validator, refusing forged ones, those whose time is outside
// ResultWindow of the node's clock, and copies of one it took.
//
//	c, _ := audit.NewClient(h)
//	out, err := c.Audit(ctx, provider, audit.Target{Bag: bag, Object: id, Root: root},
//		[]audit.Sample{{Index: 3}, {Index: 17}})
//	if err == nil && !out.Pass {
//		log.Print("provider failed: ", out.Err)
//	}
//
// The provider side is a Handler over two small interfaces the node
// implements (Objects, Blocks), served through p2p.Protocol. The wire format
// is in docs/PROTOCOL.md, section "Audits".
package audit
